"""``mnbench run`` end to end on this machine's CPU with the real runner and onnxruntime:
measurements, failures (crash, timeout, garbage output), kill-and-resume, concurrency."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.cli import main
from results.store import Store

FAST = ["--min-time", "0.05", "--max-time", "0.3", "--quiet"]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--db",
        str(tmp_path / "db.sqlite"),
        "--models-dir",
        str(tmp_path / "models"),
        *FAST,
        *extra,
    ]


def test_run_measures_and_results_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        run_args(
            tmp_path,
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "96",
            "--threads",
            "1",
            "2",
            "--trials",
            "2",
            "--label",
            "t",
        )
    )
    assert rc == 0
    out = capsys.readouterr()
    assert "p50 ms" in out.out and "run 1" in out.err
    with Store.open(tmp_path / "db.sqlite") as store:
        frame = store.results_frame([1])
        run = store.get_run(1)
    assert len(frame) == 4  # 2 models x 2 thread counts
    assert set(frame["threads"]) == {1, 2}
    assert (frame["trials"] == 2).all() and (frame["status"] == "ok").all()
    assert (frame["samples"] >= 10).all()
    assert (frame["p50_ms"] > 0).all()
    assert (frame["within_ci_low_ms"] <= frame["p50_ms"]).all()
    # Two trials: no interval across trials, and the reason why.
    assert frame["ci_low_ms"].isna().all()
    assert (frame["ci_reason"] == "2 trials: an interval needs at least 3").all()
    assert (frame["peak_rss_bytes"] > 10 * 2**20).all()
    assert run.runtime_version and run.status == "complete" and run.label == "t"
    assert run.device_facts.get("device", {}).get("kind") == "local"


def test_run_foreign_model_with_symbolic_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 30, 30])],
        [w],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7),
        str(path),
    )
    rc = main(
        run_args(
            tmp_path,
            "--model",
            str(path),
            "--shape",
            "x=4x3x32x32",
            "--threads",
            "1",
            "--trials",
            "1",
        )
    )
    assert rc == 0
    capsys.readouterr()
    with Store.open(tmp_path / "db.sqlite") as store:
        frame = store.results_frame()
    (row,) = frame.itertuples()
    assert row.name == "foreign" and row.macs == 4 * 8 * 30 * 30 * 27


def wrapper(tmp_path: Path, body: str) -> Path:
    """A device 'python' that misbehaves for one model and runs the real runner otherwise."""
    path = tmp_path / "python-wrapper"
    path.write_text(
        f'#!/bin/sh\ncase "$2" in *0.5_96*) {body} ;; esac\nexec {sys.executable} "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("kill -SEGV $$", "SIGSEGV"),
        ("kill -KILL $$", "SIGKILL"),
        ("echo 'not json'; exit 0", "no result document"),
        ("sleep 30", "timed out"),
    ],
)
def test_failures_are_recorded_and_the_sweep_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, reason: str
) -> None:
    python = wrapper(tmp_path, body)
    rc = main(
        run_args(
            tmp_path,
            "--alpha",
            "0.25",
            "0.5",
            "--resolution",
            "96",
            "--threads",
            "1",
            "--trials",
            "1",
            "--timeout",
            "5",
            "--device",
            "local",
            "--inventory",
            str(_inventory(tmp_path, python)),
        )
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert reason in err and "mobilenet_v1_0.5_96" in err
    with Store.open(tmp_path / "db.sqlite") as store:
        m = store.measurements_frame()
    assert sorted(m["status"]) == ["failed", "ok"]


def _inventory(tmp_path: Path, python: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(f'[devices.local]\nkind = "local"\npython = "{python}"\n')
    return path


def test_model_onnxruntime_rejects_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="n", domain="com.example")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph,
        ir_version=7,
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)],
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    assert main(run_args(tmp_path, "--model", str(path))) == 2
    err = capsys.readouterr().err.strip()
    assert "onnxruntime rejects" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("content", [b"garbage" * 100, b"SQLite format 3\x00" + b"\x01" * 200])
def test_corrupt_database_is_exit_2(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "db.sqlite").write_bytes(content)
    assert main(run_args(tmp_path, "--alpha", "0.25", "--resolution", "96")) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (tmp_path / "db.sqlite").read_bytes() == content  # never overwritten


def test_unknown_device_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run_args(tmp_path, "--device", "no-such-board")) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-board" in err and len(err.splitlines()) == 1


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return int(con.execute("select count(*) from measurements").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_kill_and_resume_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    argv = [
        sys.executable,
        "-m",
        "harness",
        *run_args(
            tmp_path,
            "--alpha",
            "0.25",
            "0.5",
            "--resolution",
            "96",
            "--threads",
            "1",
            "--trials",
            "3",
        ),
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while _count(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _count(db)
    assert 2 <= before < 6
    with Store.open(db) as store:
        kept = set(store.measurements_frame()["id"])
    resume = ["run", "--db", str(db), "--resume", "latest", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *resume, "--models-dir", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with Store.open(db) as store:
        m = store.measurements_frame()
        run = store.get_run(1)
    assert len(m) == 6  # 2 models x 1 thread count x 3 trials, each exactly once
    assert kept <= set(m["id"])
    assert m.groupby(["name", "trial"]).size().max() == 1 if "name" in m else True
    assert run.status == "complete"


def test_two_sweeps_share_one_database(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    argv = [
        sys.executable,
        "-m",
        "harness",
        *run_args(
            tmp_path, "--alpha", "0.25", "--resolution", "96", "--threads", "1", "--trials", "3"
        ),
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        runs = con.execute("select count(*) from runs").fetchone()[0]
    con.close()
    assert runs == 2 and _count(db) == 6
