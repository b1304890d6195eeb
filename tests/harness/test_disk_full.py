"""A full disk under ``--models-dir`` or ``--db``: one line, the run marked, no partial files,
and what was measured is kept and resumes once there is space again.

Each case mounts a small tmpfs (root can; skipped with the reason elsewhere, failed under
CI=true).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from results.store import Store
from tests.tooling import require_tool, skip_or_fail

FAST = ["--min-time", "0.05", "--max-time", "0.2", "--quiet"]
FP32_BYTES = 1_880_009  # mobilenet_v1_0.25_96.onnx


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A mount point whose tmpfs the test sizes with ``_mount``."""
    require_tool("mount", "disk-full cases mount a small tmpfs")
    directory = tmp_path / "disk"
    directory.mkdir()
    yield directory
    subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


def _mount(directory: Path, size_bytes: int) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs ({done.stderr.strip()}); needs root")


def _harness(*argv: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("mnbench:")]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


def test_full_models_dir_is_one_line_and_leaves_no_partial_model(small_disk: Path) -> None:
    _mount(small_disk, 256 * 1024)
    done = _harness("generate", "--alpha", "0.25", "--resolution", "96", "--out", str(small_disk))
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "no space left on" in line.lower() and str(small_disk) in line
    assert sorted(os.listdir(small_disk)) == []


def test_int8_on_a_full_disk_leaves_no_inferred_copy(small_disk: Path) -> None:
    _mount(small_disk, FP32_BYTES + 700 * 1024)  # the fp32 parent fits, the quantizer does not
    done = _harness(
        "generate", "--alpha", "0.25", "--resolution", "96", "--precision", "int8",
        "--out", str(small_disk),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no space left on the device" in _one_line(done.stderr)
    names = sorted(os.listdir(small_disk))
    assert names == ["mobilenet_v1_0.25_96.onnx"], names  # the complete parent only
    assert os.path.getsize(small_disk / names[0]) == FP32_BYTES


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=5)
    try:
        return int(con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_database_disk_filling_up_mid_run(small_disk: Path, tmp_path: Path) -> None:
    _mount(small_disk, 4 * 1024 * 1024)
    db = small_disk / "db.sqlite"
    argv = [sys.executable, "-m", "harness", "run", "--db", str(db)]
    argv += ["--models-dir", str(tmp_path / "models"), "--alpha", "0.25", "--resolution", "96"]
    argv += ["--threads", "1", "--trials", "6", *FAST]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    filler = small_disk / "filler"
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        with open(filler, "wb") as handle:  # take every free block
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, err
    line = _one_line(err)
    assert "disk is full" in line and "mnbench run --resume 1" in line
    kept = _count(db)
    assert 1 <= kept < 6
    filler.unlink()
    with Store.open(db) as store:
        # The status row could not be written, but its lease holder is gone: interrupted.
        assert store.get_run(1).status == "interrupted"
    models = str(tmp_path / "models")
    done = _harness("run", "--db", str(db), "--resume", "1", "--models-dir", models, "--quiet")
    assert done.returncode == 0, done.stderr
    with Store.open(db) as store:
        assert sorted(store.measurements_frame([1])["trial"]) == [1, 2, 3, 4, 5, 6]
        assert store.get_run(1).status == "complete"
