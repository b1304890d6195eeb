"""``mnbench run`` and ``mnbench devices`` end to end on remote devices:
an emulated aarch64 board behind a real sshd, and a simulated phone through the real adb
client. The same runner, the same JSON, the same store as on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

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


def _runner_machine(db: Path) -> str:
    import json
    import sqlite3

    con = sqlite3.connect(db)
    try:
        (text,) = con.execute("select document from measurements").fetchone()
    finally:
        con.close()
    return str(json.loads(text)["host_before"]["machine"])


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
