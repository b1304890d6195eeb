"""The runner's agent mode (``agent.pyz --serve``) through a real interactive process: the
ready document, bursts of K inferences, errors that keep it serving, a clean exit, and an
agent suspended between bursts taking no CPU in any of its threads."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from devices.agent.bundle import AGENT, zipapp_path
from devices.local import LocalTransport
from mobilenet.generator import generate
from mobilenet.spec import ModelSpec


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("agent")
    generate(ModelSpec(alpha=0.25, resolution=96), out)
    (path,) = out.glob("*.onnx")
    return path


def _ticks(pid: int) -> tuple[set[str], int]:
    """(thread states, utime + stime summed over every thread) from /proc."""
    states, total = set(), 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        states.add(fields[0])
        total += int(fields[11]) + int(fields[12])
    return states, total


def test_agent_serves_bursts_and_exits(model: Path, tmp_path: Path) -> None:
    argv = [sys.executable, str(zipapp_path(AGENT)), str(model), "--threads", "2", "--serve"]
    with LocalTransport(tmp_path).start_interactive(argv) as agent:
        ready = json.loads(agent.read_line(120))
        assert ready["status"] == "ok" and ready["samples_ms"] == []
        assert ready["agent"]["pgid"] == agent.pgid
        assert ready["runtime"]["session_options"]["spin"] is True  # as configured
        burst = json.loads(agent.exchange(json.dumps({"cmd": "burst", "n": 7}), 60))
        assert burst["ok"] and len(burst["samples_ms"]) == 7
        assert all(v > 0 for v in burst["samples_ms"])
        for bad in ('{"cmd": "burst", "n": 0}', '{"cmd": "fly"}', "not json"):
            reply = json.loads(agent.exchange(bad, 60))
            assert reply["ok"] is False and "\n" not in reply["error"]
        facts = json.loads(agent.exchange('{"cmd": "facts"}', 60))
        assert facts["ok"] and facts["facts"]["logical_cores"]
        assert json.loads(agent.exchange('{"cmd": "exit"}', 60)) == {"ok": True}
        for _ in range(100):  # bounded poll
            if agent.poll() is not None:
                break
            time.sleep(0.05)
        assert agent.poll() == 0


def test_suspended_agent_takes_no_cpu(model: Path, tmp_path: Path) -> None:
    argv = [sys.executable, str(zipapp_path(AGENT)), str(model), "--threads", "2", "--serve"]
    with LocalTransport(tmp_path).start_interactive(argv) as agent:
        pid = int(json.loads(agent.read_line(120))["agent"]["pid"])
        agent.exchange('{"cmd": "burst", "n": 20}', 60)  # its threads have run (and spin)
        agent.suspend()
        for _ in range(100):  # the stop is delivered asynchronously: bounded poll
            states, before = _ticks(pid)
            if states == {"T"}:
                break
            time.sleep(0.05)
        time.sleep(1.0)
        states_after, after = _ticks(pid)
        assert states == states_after == {"T"}  # every thread stopped
        assert after == before
        agent.resume()
        burst = json.loads(agent.exchange('{"cmd": "burst", "n": 5}', 60))
        assert burst["ok"] and len(burst["samples_ms"]) == 5
