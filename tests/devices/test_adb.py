"""AdbTransport through the real adb client against the simulated phone."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from devices.adb import AdbTransport, shell_command
from devices.transport import CommandFailed, CommandTimeout, Transport, TransportError
from tests.adbsim import Faults
from tests.fixtures.adb import AdbPhone, MakePhone


def test_is_a_transport(adb_transport: AdbTransport) -> None:
    assert isinstance(adb_transport, Transport)
    assert adb_transport.name.startswith("adb://127.0.0.1:")


def test_shell_command_quotes_every_word() -> None:
    line = shell_command(["echo", "a b", "$HOME", "it's"], env={"K": "v w"}, cwd="/d i r")
    assert line == "cd '/d i r' && K='v w' echo 'a b' '$HOME' 'it'\"'\"'s'"
    with pytest.raises(ValueError):
        shell_command(["true"], env={"A B": "x"})


def test_run_stdout_stderr_exit_code(adb_transport: AdbTransport) -> None:
    done = adb_transport.run(["sh", "-c", "echo out; echo err >&2; exit 5"], 30, check=False)
    assert (done.rc, done.stdout, done.stderr) == (5, "out\n", "err\n")
    with pytest.raises(CommandFailed) as failed:
        adb_transport.run(["sh", "-c", "echo boom >&2; exit 2"], 30)
    assert failed.value.completed.rc == 2
    assert "exited 2: boom" in failed.value.message


def test_run_quoting_env_cwd(adb_transport: AdbTransport) -> None:
    tricky = "a 'b' \"c\" $d `e` ; f | g"
    done = adb_transport.run(["printf", "%s|%s", tricky, "x"], 30)
    assert done.stdout == f"{tricky}|x"
    workdir = adb_transport.workdir
    done = adb_transport.run(
        ["sh", "-c", 'echo "$MN_X"; pwd'], 30, env={"MN_X": "1 2"}, cwd=workdir
    )
    assert done.stdout == f"1 2\n{workdir}\n"


def test_run_long_argument(adb_transport: AdbTransport) -> None:
    word = "w" * 10_000
    assert adb_transport.run(["printf", "%s", word], 30).stdout == word


def test_output_without_trailing_newline(adb_transport: AdbTransport) -> None:
    assert adb_transport.run(["printf", "no-newline"], 30).stdout == "no-newline"


def test_push_pull_round_trip_nested(adb_transport: AdbTransport, tmp_path: Path) -> None:
    data = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    local = tmp_path / "in.bin"
    local.write_bytes(data)
    remote = f"{adb_transport.workdir}/deep/er/in.bin"
    adb_transport.push(local, remote)
    back = tmp_path / "out" / "sub" / "back.bin"
    adb_transport.pull(remote, back)
    assert back.read_bytes() == data
    assert adb_transport.run(["wc", "-c", remote], 30).stdout.split()[0] == str(len(data))


def test_pull_missing_file(adb_transport: AdbTransport, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=r"^pull .*No such file or directory"):
        adb_transport.pull(f"{adb_transport.workdir}/nope", tmp_path / "nope")
    assert not list(tmp_path.iterdir())


def test_push_missing_local_file(adb_transport: AdbTransport, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="no such local file"):
        adb_transport.push(tmp_path / "absent", f"{adb_transport.workdir}/x")


def test_timeout_kills(adb_transport: AdbTransport) -> None:
    with pytest.raises(CommandTimeout, match="did not finish within 1 s"):
        adb_transport.run(["sh", "-c", "echo started; sleep 60"], 1)


def test_connects_host_port_serial_itself(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(connect=False)
    transport = phone.server.transport(phone.serial)
    assert transport.run(["getprop", "ro.product.model"], 30).stdout == "Pixel Sim 8\n"
    assert transport.shell_v2


def test_legacy_shell_uses_the_marker(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(features=("cmd", "stat_v2"))
    transport = phone.server.transport(phone.serial)
    done = transport.run(["sh", "-c", "echo out; exit 6"], 30, check=False)
    assert not transport.shell_v2
    assert (done.rc, done.stdout) == (6, "out\n")


def test_error_no_adb_binary(tmp_path: Path) -> None:
    transport = AdbTransport("whatever", adb=str(tmp_path / "no-adb"))
    with pytest.raises(TransportError, match=r"apt-get install adb.*adb=PATH"):
        transport.run(["true"], 10)


def test_error_device_not_found(adb_phone: AdbPhone) -> None:
    transport = adb_phone.server.transport("NOSUCHSERIAL")
    with pytest.raises(TransportError) as error:
        transport.run(["true"], 10)
    assert "'NOSUCHSERIAL' not found" in error.value.message
    assert "adb devices" in error.value.message
    assert "\n" not in error.value.message


def test_error_connect_refused(adb_phone: AdbPhone) -> None:
    transport = adb_phone.server.transport("127.0.0.1:1")
    with pytest.raises(TransportError, match=r"cannot connect to adb device 127\.0\.0\.1:1"):
        transport.run(["true"], 10)


def test_error_unauthorized(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(faults=Faults(auth=True))
    transport = phone.server.transport(phone.serial)
    with pytest.raises(TransportError) as error:
        transport.run(["true"], 10)
    assert "unauthorized" in error.value.message
    assert "accept the RSA prompt" in error.value.message


def test_error_failed_send(make_adb_phone: MakePhone, tmp_path: Path) -> None:
    phone = make_adb_phone(faults=Faults(send_failure="No space left on device"))
    transport = phone.server.transport(phone.serial)
    local = tmp_path / "m.onnx"
    local.write_bytes(b"m" * 100_000)
    with pytest.raises(TransportError) as error:
        transport.push(local, "/data/local/tmp/m.onnx")
    message = error.value.message
    assert "write failed: No space left on device" in message
    assert "free space" in message
    assert "\n" not in message


def test_error_connection_dropped_mid_push(make_adb_phone: MakePhone, tmp_path: Path) -> None:
    phone = make_adb_phone(faults=Faults(drop_after_bytes=500_000))
    transport = phone.server.transport(phone.serial)
    transport.run(["true"], 30)
    local = tmp_path / "m.onnx"
    local.write_bytes(b"m" * 3_000_000)
    with pytest.raises(TransportError, match=r"lost|offline") as error:
        transport.push(local, "/data/local/tmp/m.onnx")
    assert "\n" not in error.value.message
    with pytest.raises(TransportError, match="is offline"):
        transport.run(["true"], 10)


def test_error_connection_dropped_mid_command(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone()
    transport = phone.server.transport(phone.serial)
    transport.run(["true"], 30)
    flag = phone.sim.data_dir / "started"
    stop = threading.Event()

    def cut_when_started() -> None:
        while not stop.wait(0.05):
            if flag.exists():
                phone.sim.drop_connections()
                return

    watcher = threading.Thread(target=cut_when_started)
    watcher.start()
    try:
        # adb 29 itself reports exit 0 here; the missing end marker gives the loss away.
        with pytest.raises(TransportError, match="was lost while running 'sh'"):
            transport.run(["sh", "-c", "touch /data/local/tmp/started; sleep 30"], 60)
    finally:
        stop.set()
        watcher.join()
