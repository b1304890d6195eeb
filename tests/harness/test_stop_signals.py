"""Stopping a real sweep: SIGINT, SIGTERM, SIGHUP and SIGKILL of the harness process alone.

Each case runs ``python -m harness run`` on the local device with a small model, waits until
a runner child is measuring, signals only the harness (not its process group, so the runner
must be brought down by the harness or by the kernel), then checks the process table for
runner processes, the run's status, the one line on stderr, the temporary work directory,
and that ``--resume`` completes the run with every measurement exactly once.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from results.store import Store
from tests.fixtures.adb import AdbPhone
from tests.fixtures.sshd import SshServer

TRIALS = 2
MIN_TIME_S = 1.5
"""Each runner measures at least this long, so one outliving the harness is still there
when the process table is read a moment after the harness is gone."""


def _runners(marker: str) -> list[psutil.Process]:
    """Live runner processes whose command line mentions ``marker`` (the test's tmp dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        alive = proc.info.get("status") != psutil.STATUS_ZOMBIE
        if "agent.pyz" in cmdline and marker in cmdline and alive:
            found.append(proc)
    return found


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


@contextlib.contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Ctrl-C reaches a foreground program; a suite started in the background (`make test &`)
    inherits SIGINT ignored, as POSIX shells set for background jobs, and so would the child.
    A handled (not ignored) signal is reset to its default across exec."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _env(tmp_path: Path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp)}


@pytest.mark.parametrize(
    ("signum", "rc"),
    [
        (signal.SIGINT, 130),
        (signal.SIGTERM, 143),
        (signal.SIGHUP, 129),
        (signal.SIGKILL, -signal.SIGKILL),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"],
)
def test_signal_stops_the_sweep_cleanly(tmp_path: Path, signum: int, rc: int) -> None:
    _stop_and_resume(tmp_path, signum, rc, "local")


@pytest.mark.parametrize(
    ("signum", "rc"),
    [(signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGKILL"],
)
def test_signal_stops_an_ssh_sweep_on_the_board_too(
    sshd_server: SshServer, tmp_path: Path, signum: int, rc: int
) -> None:
    """The board is this machine (the sshd fixture), so its runner is in the same table."""
    query = {
        "identity_file": sshd_server.identity_file,
        "known_hosts_file": sshd_server.known_hosts_file,
        "python": sys.executable,
        "workdir": str(tmp_path / "board"),
    }
    url = f"ssh://{sshd_server.user}@{sshd_server.host}:{sshd_server.port}?" + "&".join(
        f"{k}={quote(v, safe='/')}" for k, v in query.items()
    )
    _stop_and_resume(tmp_path, signum, rc, url)


@pytest.mark.parametrize(
    ("signum", "rc"),
    [(signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGKILL"],
)
def test_signal_stops_an_adb_sweep_on_the_phone_too(
    adb_phone: AdbPhone, tmp_path: Path, signum: int, rc: int
) -> None:
    """The simulated phone runs its shell commands on this machine, in its sandbox."""
    server = adb_phone.server
    marker = f"mnbench-stop-{tmp_path.name}"
    url = (
        f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}&workdir=/data/local/tmp/{marker}"
    )
    _stop_and_resume(tmp_path, signum, rc, url, marker)


def _stop_and_resume(
    tmp_path: Path, signum: int, rc: int, device: str, marker: str | None = None
) -> None:
    marker = marker or str(tmp_path)
    db = tmp_path / "db.sqlite"
    env = _env(tmp_path)
    argv = [sys.executable, "-m", "harness", "run", "--device", device, "--db", str(db)]
    # A URL naming the board's python is given again: a database never names a program.
    resume = ["mnbench", "run", "--resume", "1"]
    resume += ["--device", device] if "python=" in device else []
    resume += ["--db", str(db), "--models-dir", str(tmp_path / "models")]
    argv += ["--models-dir", str(tmp_path / "models"), "--alpha", "0.25", "--resolution", "96"]
    argv += ["--threads", "1", "--trials", str(TRIALS), "--min-time", str(MIN_TIME_S)]
    argv += ["--max-time", str(MIN_TIME_S + 1)]
    argv += ["--quiet"]
    with _sigint_not_ignored():
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _count(db) >= 1 and _runners(marker):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        assert _runners(marker), "no runner was measuring when the signal was sent"
        os.kill(proc.pid, signum)  # the harness alone, not its process group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == rc, err
    # An orphan would still be measuring for at least MIN_TIME_S after the signal (it had
    # only just started): wait for less than that for the device side to kill it.
    deadline = time.monotonic() + 0.75 * MIN_TIME_S
    while _runners(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _runners(marker), "a runner outlived the harness"
    with Store.open(db) as store:
        run = store.get_run(1)
        kept = _count(db)
        lease = store.lease_holder(1)
    assert 1 <= kept < TRIALS
    workdirs = list((tmp_path / "tmp").glob("mnbench-*"))
    if signum == signal.SIGKILL:
        # Nothing runs on SIGKILL: the row still says running, but its lease holder is dead.
        assert run.status == "interrupted" and lease is not None
        assert err.count("\n") == 1 and err.startswith("run 1: ")
    else:
        name = signal.Signals(signum).name
        lines = [line for line in err.strip().splitlines() if "accept-new" not in line]
        assert lines[-1] == (
            f"mnbench: interrupted ({name}); what was measured is kept; resume with "
            f"`{shlex.join(resume)}`"
        )
        assert "Traceback" not in err and len(lines) == 2  # "run 1: ..." and that line
        assert run.status == "interrupted" and lease is None
        assert workdirs == []
        # On a board, what the sweep pushed (runner, model copies) is removed too.
        assert list((tmp_path / "board").glob("session-*")) == []
    done = subprocess.run(
        [sys.executable, "-m", "harness", *resume[1:], "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"run 1: {TRIALS - kept} measured, {kept} already there, 0 failed" in done.stderr
    with Store.open(db) as store:
        frame = store.measurements_frame([1])
        assert store.get_run(1).status == "complete"
    assert sorted(frame["trial"]) == list(range(1, TRIALS + 1))
    # The resume also removed the work directory the killed harness left behind.
    assert list((tmp_path / "tmp").glob("mnbench-*")) == []


def test_keep_workdir_says_where_it_is(tmp_path: Path) -> None:
    env = _env(tmp_path)
    argv = [sys.executable, "-m", "harness", "run", "--db", str(tmp_path / "db.sqlite")]
    argv += ["--models-dir", str(tmp_path / "models"), "--alpha", "0.25", "--resolution", "96"]
    argv += ["--threads", "1", "--trials", "1", "--min-time", "0.05", "--max-time", "0.2"]
    argv += ["--quiet", "--keep-workdir"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (kept,) = list((tmp_path / "tmp").glob("mnbench-*/session-*"))
    assert f"kept the work directory {kept}\n" in done.stderr
    assert (kept / "agent.pyz").is_file() and list((kept / "models").glob("*.onnx"))


def test_stopped_regress_says_how_to_finish_both_sides(tmp_path: Path) -> None:
    """After SIGTERM both runs are interrupted and the line names each side's resume."""
    from harness.measure.runtimes import ensure_runtime

    oldest, newest = "onnxruntime==1.15.1", "onnxruntime==1.31.1"
    ensure_runtime(oldest), ensure_runtime(newest)
    db = tmp_path / "db.sqlite"
    argv = [sys.executable, "-m", "harness", "regress", "--baseline", oldest]
    argv += ["--candidate", newest, "--db", str(db), "--models-dir", str(tmp_path / "models")]
    argv += ["--alpha", "0.25", "--resolution", "96", "--threads", "1", "--trials", "4"]
    argv += ["--design", "trials"]
    argv += ["--min-time", str(MIN_TIME_S), "--max-time", str(MIN_TIME_S + 1), "--quiet"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(tmp_path)
    )
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mnbench: interrupted (SIGTERM); what was measured is kept; ")
    assert "`mnbench run --resume 1` and `mnbench run --resume 2`" in last
    assert "`mnbench compare 1 2`" in last
    with Store.open(db) as store:
        assert [store.get_run(r).status for r in (1, 2)] == ["interrupted", "interrupted"]
