"""Regression testing with real onnxruntime releases from the package registry, in cached
environments: runtime add/list/remove, regress end to end, A/A false alarms, a known
slowdown caught, and bad input."""

from __future__ import annotations

import itertools
import json
import stat
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.measure.runtimes import MARKER, ensure_runtime, runtime_for
from results.store import Store
from tests.fixtures.sshd import SshServer

OLDEST = "onnxruntime==1.15.1"  # the oldest release our models promise to load in
NEWEST = "onnxruntime==1.31.1"
FAST = ["--min-time", "0.05", "--max-time", "0.3", "--quiet"]


@pytest.fixture(scope="session")
def runtimes() -> tuple[Path, Path]:
    """Two real releases in environments cached across test sessions."""
    return ensure_runtime(OLDEST).python, ensure_runtime(NEWEST).python


def regress(tmp_path: Path, baseline: str, candidate: str, *extra: str) -> list[str]:
    return [
        "regress",
        "--baseline",
        baseline,
        "--candidate",
        candidate,
        "--db",
        str(tmp_path / "db.sqlite"),
        "--models-dir",
        str(tmp_path / "models"),
        "--threads",
        "1",
        *FAST,
        *extra,
    ]


def test_two_releases_end_to_end(
    tmp_path: Path, runtimes: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        regress(
            tmp_path,
            OLDEST,
            NEWEST,
            "--alpha",
            "0.25",
            "0.5",
            "--resolution",
            "128",
            "--design",
            "trials",
            "--trials",
            "3",
            "--format",
            "json",
            "--seed",
            "1",
        )
    )
    out = capsys.readouterr().out
    assert rc in (0, 1, 3)
    doc = json.loads(out)
    assert len(doc["cells"]) == 2 and not doc["failed"]
    with Store.open(tmp_path / "db.sqlite") as store:
        runs = store.list_runs()
        m = store.measurements_frame()
    versions = sorted(r.runtime_version or "" for r in runs)
    assert versions == ["1.15.1", "1.31.1"]  # the oldest runtime loads and runs our models
    assert (m["status"] == "ok").all() and len(m) == 2 * 2 * 3
    # ABBA: within each cell the side that goes first alternates from trial to trial
    for _, cell in m.sort_values("id").groupby("sha256"):
        firsts = [int(t.iloc[0]) for _, t in cell.groupby("trial", sort=True)["run_id"]]
        assert all(a != b for a, b in itertools.pairwise(firsts))


def test_runtime_list_and_rebuild_of_a_broken_environment(
    runtimes: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runtime", "list"]) == 0
    listing = capsys.readouterr().out
    assert OLDEST in listing and NEWEST in listing
    runtime = runtime_for(OLDEST)
    (runtime.path / MARKER).unlink()  # an install that broke half-way has no marker
    assert not runtime.complete
    assert ensure_runtime(OLDEST).complete


@pytest.mark.parametrize("repeat", range(3))
def test_a_a_gives_no_false_alarm(
    tmp_path: Path, repeat: int, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        regress(
            tmp_path,
            "current",
            "current",
            "--alpha",
            "0.25",
            "--resolution",
            "96",
            "128",
            "--design",
            "trials",
            "--trials",
            "6",
            "--format",
            "json",
            "--seed",
            str(repeat),
        )
    )
    doc = json.loads(capsys.readouterr().out)
    verdicts = [c["verdict"] for c in doc["cells"]]
    assert "slower" not in verdicts and "faster" not in verdicts
    assert rc in (0, 3)


def slow_python(tmp_path: Path, extra_ms: float) -> Path:
    """An interpreter whose onnxruntime sleeps a fixed extra time per inference."""
    site = tmp_path / "slow-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import time\n"
        "import onnxruntime\n"
        "_run = onnxruntime.InferenceSession.run_with_iobinding\n"
        "def _slow(self, *args, **kwargs):\n"
        f"    time.sleep({extra_ms / 1000!r})\n"
        "    return _run(self, *args, **kwargs)\n"
        "onnxruntime.InferenceSession.run_with_iobinding = _slow\n"
    )
    wrapper = tmp_path / "python-slow"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


def test_known_slowdown_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slow = slow_python(tmp_path, extra_ms=2.0)
    rc = main(
        regress(
            tmp_path,
            "current",
            str(slow),
            "--alpha",
            "0.25",
            "--resolution",
            "96",
            "--design",
            "trials",
            "--trials",
            "6",
            "--confirm",
            "2",
            "--format",
            "json",
            "--seed",
            "3",
        )
    )
    doc = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in doc["cells"]] == ["slower"]
    assert rc == 1
    assert doc["cells"][0]["candidate_trials"] == 8  # --confirm added two trials per side
    assert (
        main(
            regress(
                tmp_path,
                "current",
                str(slow),
                "--alpha",
                "0.25",
                "--resolution",
                "96",
                "--design",
                "trials",
                "--trials",
                "6",
                "--warn-only",
            )
        )
        == 0
    )
    capsys.readouterr()


@pytest.mark.parametrize(
    ("baseline", "fragment"),
    [
        ("onnxruntime==0.0.1", "not in the package registry"),
        ("onnxruntime>=1.0", "not of the form"),
    ],
)
def test_bad_runtimes_exit_2(
    tmp_path: Path, baseline: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(regress(tmp_path, baseline, "current", "--alpha", "0.25", "--resolution", "96")) == 2
    )
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
    assert not runtime_for("onnxruntime==0.0.1").path.exists()


def test_compare_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    for device in ("a", "b"):
        with Store.open(Path(db)) as store:
            store.create_run(
                device=device,
                device_kind="local",
                device_facts={},
                config={},
                harness_version="t",
                runtime_version=None,
                label=None,
            )
    assert main(["compare", "1", "2", "--db", db]) == 2
    assert "different devices" in capsys.readouterr().err
    assert main(["compare", "1", "99", "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert "99" in err and len(err.splitlines()) == 1


def test_runtime_environment_on_a_board(
    tmp_path: Path, sshd_server: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "devices.toml"
    inventory.write_text(
        "[devices.board]\n"
        f'host = "{sshd_server.host}"\nport = {sshd_server.port}\nuser = "{sshd_server.user}"\n'
        f'identity_file = "{sshd_server.identity_file}"\n'
        f'known_hosts_file = "{sshd_server.known_hosts_file}"\n'
        f'python = "{sys.executable}"\nworkdir = "{tmp_path / "board"}"\n'
    )
    argv = regress(
        tmp_path,
        NEWEST,
        "current",
        "--device",
        "board",
        "--inventory",
        str(inventory),
        "--alpha",
        "0.25",
        "--resolution",
        "96",
        "--max-pairs",
        "3",
        "--bursts",
        "2",
        "--format",
        "json",
    )
    assert main(argv) == 2  # not on the board yet: say how to get it
    err = capsys.readouterr().err.strip()
    assert "--install" in err and len(err.splitlines()) == 1
    assert main([*argv, "--install"]) in (0, 1, 3)
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["cells"]) == 1 and not doc["failed"]
    board_python = tmp_path / "board" / "runtimes" / "onnxruntime-1.31.1" / "bin" / "python"
    assert board_python.exists()
    with Store.open(tmp_path / "db.sqlite") as store:
        baseline = store.list_runs()[0]
    assert baseline.runtime_version == "1.31.1" and baseline.device_kind == "ssh"
