"""The interactive-process contract (devices/interactive.py) on every transport: line
exchanges, a timeout per exchange that kills the process group, and suspend/resume of the
device-side group, with a suspended process taking no CPU (its /proc/PID/stat ticks)."""

from __future__ import annotations

import time

import pytest

from devices.interactive import InteractiveTransport
from devices.transport import CommandTimeout, Transport, TransportError

TRANSPORTS = ["local_transport", "ssh_transport", "adb_transport"]
ECHO = ["sh", "-c", 'while read -r l; do printf "got:%s\\n" "$l"; done']


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    value = request.getfixturevalue(request.param)
    assert isinstance(value, Transport) and isinstance(value, InteractiveTransport)
    return value


def _interactive(transport: Transport) -> InteractiveTransport:
    assert isinstance(transport, InteractiveTransport)
    return transport


def _cpu_ticks(transport: Transport, pid: int) -> tuple[str, int]:
    """(state, utime + stime) of a device process, from /proc/PID/stat."""
    fields = transport.run(["cat", f"/proc/{pid}/stat"], timeout_s=30).stdout.split()
    return fields[2], int(fields[13]) + int(fields[14])


def _group_alive(transport: Transport, pgid: int) -> bool:
    return transport.run(["kill", "-0", "--", f"-{pgid}"], 30, check=False).rc == 0


def test_lines_go_both_ways_verbatim(transport: Transport) -> None:
    odd = "a 'b' \"c\" $HOME `x` ; | é"
    with _interactive(transport).start_interactive(ECHO) as proc:
        assert proc.exchange("hello", timeout_s=30) == "got:hello"
        assert proc.exchange(odd, timeout_s=30) == f"got:{odd}"
        assert proc.pgid > 1
    assert proc.poll() == 0  # stdin closed: the loop ended on its own


def test_env_and_cwd_reach_the_command(transport: Transport) -> None:
    argv = ["sh", "-c", 'printf "%s|%s\\n" "$MNB_X" "$(pwd)"; read -r l']
    with _interactive(transport).start_interactive(argv, env={"MNB_X": "v 1"}, cwd="/") as proc:
        assert proc.read_line(timeout_s=30) == "v 1|/"


def test_exchange_timeout_kills_the_group(transport: Transport) -> None:
    argv = ["sh", "-c", "read -r l; sleep 60 & wait"]
    proc = _interactive(transport).start_interactive(argv)
    pgid = proc.pgid
    with pytest.raises(CommandTimeout) as info:
        proc.exchange("go", timeout_s=1.0)
    assert "did not answer" in str(info.value)
    for _ in range(100):  # bounded poll, never timed
        if not _group_alive(transport, pgid):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process group {pgid} still runs after its exchange timed out")


def test_a_command_that_exits_is_reported(transport: Transport) -> None:
    proc = _interactive(transport).start_interactive(["sh", "-c", "echo bye >&2; exit 4"])
    with pytest.raises(TransportError) as info:
        proc.exchange("anything", timeout_s=30)
    assert "bye" in str(info.value)
    proc.close()


def test_suspended_group_takes_no_cpu(transport: Transport) -> None:
    busy = ["sh", "-c", "echo $$; while :; do :; done"]
    proc = _interactive(transport).start_interactive(busy)
    try:
        pid = int(proc.read_line(timeout_s=30))
        _, start = _cpu_ticks(transport, pid)
        for _ in range(100):  # it runs: its ticks grow (bounded poll)
            if _cpu_ticks(transport, pid)[1] > start:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the busy loop never got CPU time")
        proc.suspend()
        for _ in range(100):  # the signal is delivered asynchronously (bounded poll)
            state, before = _cpu_ticks(transport, pid)
            if state == "T":
                break
            time.sleep(0.05)
        time.sleep(1.0)
        state_after, after = _cpu_ticks(transport, pid)
        assert state == state_after == "T"  # stopped
        assert after == before  # not a single tick while suspended
        proc.resume()
        for _ in range(100):
            if _cpu_ticks(transport, pid)[1] > after:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the loop did not run again after resume()")
    finally:
        proc.close(timeout_s=0.5)
    assert not _group_alive(transport, proc.pgid)
