"""The Transport contract (devices/transport.py), run against every transport implementation.

To add a transport, add its fixture name to ``TRANSPORTS``; the fixture yields a live
transport whose ``workdir`` is writable and is closed by the fixture.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from devices.transport import CommandFailed, CommandTimeout, Transport, TransportError

TRANSPORTS = ["local_transport", "ssh_transport", "adb_transport"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    value = request.getfixturevalue(request.param)
    assert isinstance(value, Transport)
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_echo(transport: Transport) -> None:
    done = transport.run(["echo", "hello", "world"], timeout_s=30)
    assert done.rc == 0
    assert done.stdout == "hello world\n"
    assert done.stderr == ""
    assert done.argv == ("echo", "hello", "world")
    assert done.wall_s >= 0


def test_nonzero_exit_raises_with_output(transport: Transport) -> None:
    with pytest.raises(CommandFailed) as info:
        transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout_s=30)
    assert info.value.completed.rc == 3
    assert info.value.completed.stdout == "out\n"
    assert info.value.completed.stderr == "err\n"
    assert "exited 3" in str(info.value)
    assert "\n" not in str(info.value)


def test_check_false_returns_rc(transport: Transport) -> None:
    done = transport.run(["sh", "-c", "exit 7"], timeout_s=30, check=False)
    assert done.rc == 7


def test_stderr_is_separate(transport: Transport) -> None:
    done = transport.run(["sh", "-c", "echo to-out; echo to-err >&2"], timeout_s=30)
    assert done.stdout == "to-out\n"
    assert done.stderr == "to-err\n"


def test_env_is_passed(transport: Transport) -> None:
    value = "two words; $HOME `x` 'q' \"d\""
    done = transport.run(
        ["sh", "-c", 'printf %s "$MNBENCH_A|$MNBENCH_B"'],
        timeout_s=30,
        env={"MNBENCH_A": value, "MNBENCH_B": "1"},
    )
    assert done.stdout == f"{value}|1"


def test_cwd(transport: Transport) -> None:
    target = f"{transport.workdir}/sub dir"
    transport.run(["mkdir", "-p", target], timeout_s=30)
    done = transport.run(["pwd"], timeout_s=30, cwd=target)
    assert done.stdout.strip() == target


ODD_ARGS = [
    "two words",
    "single ' quote",
    'double " quote',
    "$HOME",
    "${PATH}",
    "semi; colon",
    "back `tick`",
    "$(echo sub)",
    "pipe | bar",
    "amp & ersand",
    "new\nline",
    "tab\there",
    "back\\slash",
    "*",
    "~",
    "-n",
    "",
    "ünïcødé",
]


def test_arguments_arrive_verbatim(transport: Transport) -> None:
    done = transport.run(["printf", "<%s>", *ODD_ARGS], timeout_s=30)
    assert done.stdout == "".join(f"<{a}>" for a in ODD_ARGS)
    for arg in ("", "-n", "a'b\"c"):  # alone, where an empty or option-like argv could vanish
        assert transport.run(["printf", "[%s]", arg], timeout_s=30).stdout == f"[{arg}]"


def test_no_command_injection(transport: Transport, tmp_path: Path) -> None:
    # The device is this machine for both transports, so a file created by an injected
    # command would appear here.
    pwned = tmp_path / "pwned"
    attacks = [
        f"; touch {pwned}",
        f"$(touch {pwned})",
        f"`touch {pwned}`",
        f"| touch {pwned}",
        f"&& touch {pwned}",
        f"'; touch {pwned}; '",
        f'"; touch {pwned}; "',
        f"\ntouch {pwned}\n",
    ]
    done = transport.run(["printf", "%s|", *attacks], timeout_s=30)
    assert done.stdout == "".join(f"{a}|" for a in attacks)
    env = {f"X{i}": attack for i, attack in enumerate(attacks)}
    transport.run(["sh", "-c", 'printf %s "$X0$X1$X2"'], timeout_s=30, env=env, cwd="/")
    for attack in attacks[:4]:
        with pytest.raises(TransportError):  # no such directory
            transport.run(["true"], timeout_s=30, cwd=attack)
    assert not pwned.exists()


def test_timeout_kills_the_command(transport: Transport, tmp_path: Path) -> None:
    pidfile = f"{transport.workdir}/sleeper.pid"
    with pytest.raises(CommandTimeout) as info:
        # A grandchild: only killing the whole process group reaches it.
        transport.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout_s=1.5)
    assert "timeout" in str(info.value) or "did not finish" in str(info.value)
    local = tmp_path / "sleeper.pid"
    transport.pull(pidfile, local)
    pid = local.read_text().strip()
    # The command must be gone (not merely abandoned): poll, bounded, never timed.
    for _ in range(100):
        alive = transport.run(["sh", "-c", f"kill -0 {pid} 2>/dev/null"], 30, check=False)
        if alive.rc != 0:
            break
        transport.run(["sleep", "0.1"], timeout_s=30)
    else:
        pytest.fail(f"process {pid} still runs after its command timed out")


def test_push_pull_large_file(transport: Transport, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    remote = f"{transport.workdir}/big/nested/deeper/big.bin"
    transport.push(source, remote)
    back = tmp_path / "back" / "big.bin"
    transport.pull(remote, back)
    assert _sha256(back) == _sha256(source)
    done = transport.run(["sha256sum", remote], timeout_s=60)
    assert done.stdout.split()[0] == _sha256(source)


def test_push_pull_empty_file(transport: Transport, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    remote = f"{transport.workdir}/empty"
    transport.push(source, remote)
    back = tmp_path / "empty.back"
    transport.pull(remote, back)
    assert back.read_bytes() == b""


def test_push_pull_odd_path(transport: Transport, tmp_path: Path) -> None:
    source = tmp_path / "odd.bin"
    payload = bytes(range(256)) * 7 + b"\r\n\x00end"
    source.write_bytes(payload)
    remote = f"{transport.workdir}/dir with space/$HOME; `x` 'q' & | ü/-file name.bin"
    transport.push(source, remote)
    back = tmp_path / "local dir; $x" / "back.bin"
    transport.pull(remote, back)
    assert back.read_bytes() == payload


def test_push_overwrites(transport: Transport, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    remote = f"{transport.workdir}/a.txt"
    for text in ("first version, longer\n", "second\n"):
        source.write_text(text)
        transport.push(source, remote)
        back = tmp_path / "a.back"
        transport.pull(remote, back)
        assert back.read_text() == text


def test_pull_missing_file_raises_one_line(transport: Transport, tmp_path: Path) -> None:
    with pytest.raises(TransportError) as info:
        transport.pull(f"{transport.workdir}/no/such/file", tmp_path / "x")
    message = str(info.value)
    assert "\n" not in message
    assert "No such file" in message
    assert not (tmp_path / "x").exists()


def test_workdir_is_writable(transport: Transport) -> None:
    workdir = transport.workdir
    assert workdir.startswith("/")
    transport.run(["touch", f"{workdir}/probe"], timeout_s=30)
    assert transport.workdir == workdir
