"""``mnbench run`` and ``mnbench devices`` end to end on remote devices:
an emulated aarch64 board behind a real sshd, and a simulated phone through the real adb
client. The same runner, the same JSON, the same store as on this machine."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from results.store import Store
from tests.fixtures.adb import AdbPhone
from tests.fixtures.build_arm64_sysroot import Arm64Sysroot
from tests.fixtures.sshd import SshServer

FAST = ["--min-time", "0.05", "--max-time", "1", "--quiet", "--threads", "1"]


def board_inventory(tmp_path: Path, server: SshServer, python: str) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(
        "[devices.board]\n"
        f'host = "{server.host}"\nport = {server.port}\nuser = "{server.user}"\n'
        f'identity_file = "{server.identity_file}"\n'
        f'known_hosts_file = "{server.known_hosts_file}"\n'
        f"python = '{python}'\n"
        f'workdir = "{tmp_path / "board-work"}"\n'
    )
    return path


@pytest.mark.slow
def test_emulated_arm_board_over_ssh(
    tmp_path: Path,
    sshd_server: SshServer,
    arm64_board: Arm64Sysroot,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inventory = board_inventory(tmp_path, sshd_server, arm64_board.python_command)
    assert main(["devices", "check", "board", "--inventory", str(inventory)]) == 0
    assert "ready to measure" in capsys.readouterr().err
    db = tmp_path / "db.sqlite"
    rc = main(
        [
            "run",
            "--device",
            "board",
            "--inventory",
            str(inventory),
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--trials",
            "1",
            "--db",
            str(db),
            "--models-dir",
            str(tmp_path / "models"),
            *FAST,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    with Store.open(db) as store:
        (m,) = store.measurements_frame().to_dict("records")
        run = store.get_run(1)
        documents = store.measurements_frame()
    assert m["status"] == "ok" and m["samples"] >= 1
    assert run.device == "board" and run.device_kind == "ssh"
    assert run.runtime_version
    doc_machine = _runner_machine(db)
    assert doc_machine == "aarch64"
    assert len(documents) == 1
    guards = _document(db)["guards"]  # sampled through ssh around the trial
    assert guards["kind"] == "ssh" and guards["own_cpu_source"] == "runner"
    assert guards["own_cpu_s"] > 0
    assert "cpu" in guards["before"]["proc_stat"] and "cpu" in guards["after"]["proc_stat"]


def _document(db: Path) -> dict[str, Any]:
    import json
    import sqlite3

    con = sqlite3.connect(db)
    try:
        (text,) = con.execute("select document from measurements").fetchone()
    finally:
        con.close()
    document: dict[str, Any] = json.loads(text)
    return document


def _runner_machine(db: Path) -> str:
    return str(_document(db)["host_before"]["machine"])


def test_ssh_board_without_onnxruntime_is_reported(
    tmp_path: Path, sshd_server: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = board_inventory(tmp_path, sshd_server, "/usr/bin/python3 -I")
    assert main(["devices", "check", "board", "--inventory", str(inventory)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "pip install" in out


def test_simulated_phone_over_adb(
    tmp_path: Path, adb_phone: AdbPhone, capsys: pytest.CaptureFixture[str]
) -> None:
    server = adb_phone.server
    url = (
        f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}"
    )
    db = tmp_path / "db.sqlite"
    rc = main(
        [
            "run",
            "--device",
            url,
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--trials",
            "1",
            "--db",
            str(db),
            "--models-dir",
            str(tmp_path / "models"),
            "--cpus",
            "0x1",
            *FAST,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    with Store.open(db) as store:
        (m,) = store.measurements_frame().to_dict("records")
        run = store.get_run(1)
    assert m["status"] == "ok" and m["samples"] >= 1
    facts = run.device_facts
    assert run.device_kind == "adb"
    assert "Pixel Sim 8" in str(facts)
    assert m["cpus"] == "0"  # the simulated phone's shell runs on this 2-core host


def test_phone_runner_binary_for_the_wrong_abi(
    tmp_path: Path, adb_phone: AdbPhone, capsys: pytest.CaptureFixture[str]
) -> None:
    server = adb_phone.server
    url = (
        f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&perf_test=/bin/true"
    )  # an x86-64 ELF; the phone is arm64-v8a
    rc = main(
        [
            "run",
            "--device",
            url,
            "--alpha",
            "0.25",
            "--resolution",
            "96",
            "--trials",
            "1",
            "--db",
            str(tmp_path / "db.sqlite"),
            "--models-dir",
            str(tmp_path / "models"),
            *FAST,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "x86_64" in err and "arm64-v8a" in err
    assert len(err.splitlines()) <= 2


def _count(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=5)
    try:
        return int(con.execute("select count(*) from measurements").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _sweep_then_drop(argv: list[str], db: Path, drop: Callable[[], int]) -> tuple[int, str]:
    """Start a sweep, cut the device's connection once a measurement is stored: as soon as
    one is open (between two trials, on a loaded machine, the harness may have none open for
    a moment, and a cut then would cut nothing)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while _count(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the next measurement is in flight
    while drop() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _resume(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--db",
            str(db),
            "--resume",
            "latest",
            "--models-dir",
            str(db.parent / "m"),
            "--quiet",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


SWEEP = [
    "--alpha",
    "0.25",
    "0.5",
    "--resolution",
    "96",
    "--trials",
    "3",
    "--threads",
    "1",
    "--min-time",
    "1",
    "--max-time",
    "2",
    "--quiet",
]


def test_ssh_connection_dropped_mid_sweep_then_resumed(
    tmp_path: Path, sshd_server: SshServer, drop_ssh_connections: Callable[[], int]
) -> None:
    inventory = board_inventory(tmp_path, sshd_server, sys.executable)
    db = tmp_path / "db.sqlite"
    rc, err = _sweep_then_drop(
        [
            "run",
            "--device",
            "board",
            "--inventory",
            str(inventory),
            "--db",
            str(db),
            "--models-dir",
            str(tmp_path / "m"),
            *SWEEP,
        ],
        db,
        drop_ssh_connections,
    )
    kept = _count(db)
    assert kept >= 1
    # the drop hit a measurement in flight: one line that says how to resume
    assert rc == 2 and "--resume" in err and "kept" in err, err
    done = _resume(db, "--inventory", str(inventory))
    assert done.returncode == 0, done.stderr
    assert _count(db) == 6


def test_adb_connection_dropped_mid_sweep_then_resumed(tmp_path: Path, adb_phone: AdbPhone) -> None:
    server = adb_phone.server
    url = (
        f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}"
    )
    db = tmp_path / "db.sqlite"
    rc, err = _sweep_then_drop(
        ["run", "--device", url, "--db", str(db), "--models-dir", str(tmp_path / "m"), *SWEEP],
        db,
        adb_phone.sim.drop_connections,
    )
    assert _count(db) >= 1
    assert rc == 2 and "--resume" in err and "kept" in err, err
    # The URL names the phone's python: the hint gives it again, a resume without it refuses.
    assert f"--device {shlex.quote(url)}" in err
    refused = _resume(db)
    assert refused.returncode == 2 and "names a program (adb=, python=)" in refused.stderr
    done = _resume(db, "--device", url)
    assert done.returncode == 0, done.stderr
    assert _count(db) == 6


def test_devices_check_on_phones(adb_phone: AdbPhone, capsys: pytest.CaptureFixture[str]) -> None:
    server = adb_phone.server
    base = f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
    assert main(["devices", "check", f"{base}&python={sys.executable}"]) == 0
    assert "ready to measure" in capsys.readouterr().err
    # an x86-64 binary for an arm64-v8a phone: the check names both ABIs and how to fix it
    assert main(["devices", "check", f"{base}&perf_test=/bin/true"]) == 1
    out = capsys.readouterr().out
    assert "x86_64" in out and "arm64-v8a" in out and "--android_abi" in out
    # no runner at all: say what is missing and how to get it
    assert main(["devices", "check", base]) == 1
    out = capsys.readouterr().out
    assert "perf_test" in out and "build.sh --android" in out
