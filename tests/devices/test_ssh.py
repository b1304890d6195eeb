"""SshTransport against a real sshd on 127.0.0.1: multiplexing, host keys, failures, aarch64."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.check import check_device, device_command, install_runtime, pip_install_argv
from devices.device import DeviceConfig
from devices.local import LocalTransport
from devices.probe import collect_facts, probe_python
from devices.ssh import SshTransport, classify_ssh_error
from devices.transport import TransportError
from tests.fixtures.build_arm64_sysroot import Arm64Sysroot
from tests.fixtures.sshd import SshServer, keygen

# -- pure: ssh's own messages (OpenSSH 9.2p1) -> one line that says what to do ------------

RECORDED = {
    "refused": "ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n",
    "denied": "root@127.0.0.1: Permission denied (publickey).\r\n",
    "unknown": (
        "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict "
        "checking.\r\nHost key verification failed.\r\n"
    ),
    "changed": (
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
        "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n"
        "Offending ED25519 key in /tmp/kh:1\r\n"
        "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\r\n"
        "Host key verification failed.\r\n"
    ),
    "unresolvable": (
        "ssh: Could not resolve hostname board.invalid: Name or service not known\r\n"
    ),
    "unreachable": "ssh: connect to host 10.0.0.9 port 22: No route to host\r\n",
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("refused", "is sshd running on 127.0.0.1:2222"),
        ("denied", "ssh-copy-id -i /k/id -p 2222 root@127.0.0.1"),
        ("unknown", "accept-new"),
        ("changed", "ssh-keygen -R '[127.0.0.1]:2222' -f /tmp/kh"),
        ("unresolvable", "check the host name"),
        ("unreachable", "no route to host"),
    ],
)
def test_classify_ssh_error(case: str, expected: str) -> None:
    message = classify_ssh_error(
        RECORDED[case], "root@127.0.0.1", "127.0.0.1", 2222, "/k/id", "/tmp/kh"
    )
    assert message is not None
    assert expected in message
    assert "\n" not in message


def test_classify_ignores_command_output() -> None:
    assert classify_ssh_error("python: error\n", "b", "b", None) is None


def test_remote_command_quotes_every_piece() -> None:
    transport = SshTransport("board", user="pi")
    command = transport.remote_command(
        ["printf", "%s", "a b; rm -rf /"], env={"K": "v w"}, cwd="/d i r"
    )
    assert command.startswith("cd '/d i r' && exec env 'K=v w' sh -c ")
    assert command.endswith(" mnbench printf %s 'a b; rm -rf /'")
    with pytest.raises(ValueError, match="variable name"):
        transport.remote_command(["true"], env={"A;B": "x"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "-oProxyCommand=x"},
        {"host": "a b"},
        {"host": "h", "port": 70000},
        {"host": "h", "user": "a@b"},
    ],
)
def test_constructor_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(TransportError):
        SshTransport(**kwargs)  # type: ignore[arg-type]


def test_missing_identity_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="does not exist") as info:
        SshTransport("board", identity_file=str(tmp_path / "nope"))
    assert "\n" not in str(info.value)


# -- against the real sshd -------------------------------------------------------------------


def test_control_master_is_reused(sshd_server: SshServer) -> None:
    with sshd_server.transport() as transport:
        transport.run(["true"], timeout_s=30)
        before = sshd_server.accepted_connections()
        for _ in range(3):
            assert transport.run(["echo", "x"], timeout_s=30).stdout == "x\n"
        assert sshd_server.accepted_connections() == before


def _master_pids(control_path: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if control_path.encode() in cmdline and b"ssh" in cmdline:
                pids.append(int(entry))
    return pids


def test_close_leaves_no_master(sshd_server: SshServer) -> None:
    transport = sshd_server.transport()
    transport.run(["true"], timeout_s=30)
    control_path = transport.control_path
    assert control_path is not None and os.path.exists(control_path)
    assert _master_pids(control_path)
    transport.close()
    assert not os.path.exists(os.path.dirname(control_path))
    for _ in range(100):  # ssh -O exit is asynchronous: bounded poll, never timed
        if not _master_pids(control_path):
            break
        time.sleep(0.05)
    assert _master_pids(control_path) == []


def test_wrong_key_is_one_line_naming_the_key(sshd_server: SshServer, tmp_path: Path) -> None:
    keygen(tmp_path / "stranger", "stranger")
    with (
        sshd_server.transport(identity_file=str(tmp_path / "stranger")) as transport,
        pytest.raises(TransportError) as info,
    ):
        transport.run(["true"], timeout_s=30)
    message = str(info.value)
    assert "Permission denied" in message or "permission denied" in message
    assert str(tmp_path / "stranger") in message
    assert "\n" not in message


def test_unknown_host_key_is_refused(sshd_server: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with (
        sshd_server.transport(known_hosts_file=str(known)) as transport,
        pytest.raises(TransportError) as info,
    ):
        transport.run(["true"], timeout_s=30)
    assert "accept-new" in str(info.value)
    assert "\n" not in str(info.value)
    assert known.read_text() == ""


def test_accept_new_host_key_records_it(
    sshd_server: SshServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with sshd_server.transport(known_hosts_file=str(known), accept_new_host_key=True) as t:
        assert t.run(["echo", "hi"], timeout_s=30).stdout == "hi\n"
    assert "accept-new" in caplog.text
    host_key = (sshd_server.directory / "host_ed25519.pub").read_text().split()[1]
    assert host_key in known.read_text()
    found = subprocess.run(  # the entry may be hashed (Debian's HashKnownHosts yes)
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd_server.port}", "-f", str(known)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert host_key in found.stdout
    # ... and the recorded key now passes strict checking.
    with sshd_server.transport(known_hosts_file=str(known)) as strict:
        strict.run(["true"], timeout_s=30)


@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_never_bypassed(
    sshd_server: SshServer, tmp_path: Path, accept_new: bool
) -> None:
    impostor = keygen(tmp_path / "impostor", "impostor").split()
    known = tmp_path / "known_hosts"
    line = f"[127.0.0.1]:{sshd_server.port} {impostor[0]} {impostor[1]}\n"
    known.write_text(line)
    with (
        sshd_server.transport(known_hosts_file=str(known), accept_new_host_key=accept_new) as t,
        pytest.raises(TransportError) as info,
    ):
        t.run(["touch", str(tmp_path / "ran")], timeout_s=30)
    assert "CHANGED" in str(info.value)
    assert "ssh-keygen -R" in str(info.value)
    assert known.read_text() == line
    assert not (tmp_path / "ran").exists()


def test_connection_refused(sshd_server: SshServer) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with sshd_server.transport(port=port) as transport, pytest.raises(TransportError) as info:
        transport.run(["true"], timeout_s=30)
    assert f"is sshd running on 127.0.0.1:{port}" in str(info.value)
    assert "\n" not in str(info.value)


def test_dropped_connection_mid_command(
    sshd_server: SshServer, drop_ssh_connections: Callable[[], int], tmp_path: Path
) -> None:
    started = tmp_path / "started"
    outcome: dict[str, BaseException | None] = {}
    with sshd_server.transport() as transport:
        transport.run(["true"], timeout_s=30)

        def long_command() -> None:
            try:
                transport.run(["sh", "-c", f"touch {started}; exec sleep 60"], timeout_s=120)
                outcome["error"] = None
            except BaseException as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=long_command)
        worker.start()
        for _ in range(400):
            if started.exists():
                break
            time.sleep(0.05)
        assert started.exists()
        assert drop_ssh_connections() >= 1
        worker.join(timeout=60)
        assert not worker.is_alive()
        error = outcome["error"]
        assert isinstance(error, TransportError)
        assert "lost" in str(error)
        assert "\n" not in str(error)
        # The transport reconnects on the next command.
        assert transport.run(["echo", "back"], timeout_s=30).stdout == "back\n"


def test_push_failure_is_one_line(ssh_transport: SshTransport, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(TransportError) as info:
        ssh_transport.push(source, "/proc/mnbench-no/such/dir/f")
    assert "\n" not in str(info.value)
    assert "push" in str(info.value)


def test_workdir_default_is_under_home(sshd_server: SshServer) -> None:
    with sshd_server.transport() as transport:
        home = transport.run(["sh", "-c", 'printf %s "$HOME"'], timeout_s=30).stdout
        assert transport.workdir == f"{home}/.cache/mnbench"


def test_check_device_over_ssh(sshd_server: SshServer, tmp_path: Path) -> None:
    config = DeviceConfig(
        name="loopback",
        kind="ssh",
        host=sshd_server.host,
        port=sshd_server.port,
        user=sshd_server.user,
        identity_file=sshd_server.identity_file,
        known_hosts_file=sshd_server.known_hosts_file,
        python="python3-does-not-exist",
        workdir=str(tmp_path / "w"),
    )
    items = {item.name: item for item in check_device(config)}
    assert items["reachable"].ok
    assert not items["python"].ok
    assert items["python"].fix is not None
    assert items["workdir"].ok


# -- the emulated aarch64 board, reached over SSH ------------------------------------------


@pytest.mark.slow
def test_arm64_board_over_ssh(ssh_transport: SshTransport, arm64_board: Arm64Sysroot) -> None:
    versions = probe_python(ssh_transport, arm64_board.python_argv)
    assert versions["machine"] == "aarch64"
    assert versions["onnxruntime"] == "1.31.1"
    assert versions["numpy"]
    assert versions["in_venv"] is False
    facts = collect_facts(ssh_transport)
    assert isinstance(facts["nproc"], int) and facts["nproc"] >= 1
    assert facts["kernel"]


@pytest.mark.slow
def test_check_device_arm64_board(
    sshd_server: SshServer, arm64_board: Arm64Sysroot, tmp_path: Path
) -> None:
    config = DeviceConfig(
        name="arm64",
        kind="ssh",
        host=sshd_server.host,
        port=sshd_server.port,
        user=sshd_server.user,
        identity_file=sshd_server.identity_file,
        known_hosts_file=sshd_server.known_hosts_file,
        python=arm64_board.python_command,
        workdir=str(tmp_path / "w"),
    )
    items = check_device(config, runner_smoke=lambda transport: None)
    assert [(i.name, i.ok) for i in items] == [
        ("reachable", True),
        ("python", True),
        ("numpy", True),
        ("onnxruntime", True),
        ("workdir", True),
        ("runner", True),
    ]
    assert "aarch64" in items[1].detail


# -- fixes and runtime installation (devices/check.py) -------------------------------------


def test_fix_commands_are_pasteable() -> None:
    ssh = DeviceConfig(name="pi", kind="ssh", host="board", user="pi", port=2222)
    argv = pip_install_argv(["/opt/my venv/bin/python"], in_venv=True)
    assert device_command(ssh, argv) == (
        "ssh -p 2222 pi@board "
        "''\"'\"'/opt/my venv/bin/python'\"'\"' -m pip install numpy onnxruntime'"
    )
    assert pip_install_argv(["python3"], in_venv=False) == [
        "python3", "-m", "pip", "install", "--user", "numpy", "onnxruntime",
    ]  # fmt: skip
    adb = DeviceConfig(name="p", kind="adb", serial="emulator-5554", adb_server_port=5038)
    assert device_command(adb, ["ls", "/data/local/tmp"]) == (
        "adb -P 5038 -s emulator-5554 shell 'ls /data/local/tmp'"
    )
    assert device_command(DeviceConfig(name="local"), ["python3", "-V"]) == "python3 -V"


def test_install_runtime_into_a_venv(local_transport: LocalTransport) -> None:
    # This interpreter lives in a venv that already has both packages: pip has nothing to do.
    config = DeviceConfig(name="local", python=sys.executable)
    done = install_runtime(config, local_transport, timeout_s=300)
    assert "--user" not in done.argv
    assert done.argv[-2:] == ("numpy", "onnxruntime")
