"""Agent mode (``--serve``): the loaded session answers line-delimited JSON commands.

The document (``samples_ms`` empty, plus ``"agent": {"pid": int, "pgid": int}``) is printed
as the first line, then one reply line per command line on stdin until ``exit`` or end of
input, so bursts measure one process over time::

    {"cmd": "warmup"}          -> {"ok": true, "warmup_iterations": int, "warmup_s": float}
    {"cmd": "burst", "n": K}   -> {"ok": true, "samples_ms": [float] * K,
                                    "start_unix": float, "burst_s": float}
    {"cmd": "facts"}           -> {"ok": true, "facts": FACTS, "peak_rss_bytes": int | null}
    {"cmd": "exit"}            -> {"ok": true}, then exit 0
    anything else / a failure  -> {"ok": false, "error": "one line"}

A burst times K inferences back to back with the garbage collector off, as the measuring
loop does. The host suspends the process group between bursts (SIGSTOP/SIGCONT), so the
agent holds no lock and keeps no timer that a pause could break.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Mapping

from devices.agent.errors import UsageError, one_line
from devices.agent.facts import collect_host_facts, peak_rss
from devices.agent.loop import burst, warm_up
from devices.agent.record import Document, finite, to_ms


def _reply(stream: Any, message: Mapping[str, Any]) -> None:
    stream.write(json.dumps(finite(message), separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


def _answer(run: Any, binding: Any, args: argparse.Namespace, request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise UsageError("a command is a JSON object with a 'cmd' key")
    command = request.get("cmd")
    if command == "burst":
        count = request.get("n")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise UsageError("burst needs 'n', a positive integer")
        start_unix = time.time()
        t0 = time.perf_counter_ns()
        samples = burst(run, binding, count)
        return {
            "ok": True,
            "samples_ms": [to_ms(ns) for ns in samples],
            "start_unix": start_unix,
            "burst_s": (time.perf_counter_ns() - t0) / 1e9,
        }
    if command == "warmup":
        count, seconds = warm_up(run, binding, max(args.warmup_max, 1), args.warmup_max_time)
        return {"ok": True, "warmup_iterations": count, "warmup_s": round(seconds, 6)}
    if command == "facts":
        rss, _source = peak_rss()
        return {"ok": True, "facts": collect_host_facts(), "peak_rss_bytes": rss}
    if command == "exit":
        return {"ok": True}
    raise UsageError(f"unknown command {command!r} (burst, warmup, facts, exit)")


def serve(
    run: Any, binding: Any, args: argparse.Namespace, doc: Document, stdin: Any, stdout: Any
) -> None:
    """Print the document as the ready line, then answer one command per input line."""
    doc["status"] = "ok"
    doc["agent"] = {"pid": os.getpid(), "pgid": os.getpgrp()}
    doc["host_after"] = collect_host_facts()
    _reply(stdout, doc)
    for line in stdin:
        if not line.strip():
            continue
        request: Any = None
        try:
            request = json.loads(line)
            reply = _answer(run, binding, args, request)
        except (ValueError, UsageError) as error:
            reply = {"ok": False, "error": one_line(error)}
        except Exception as error:  # inference failed mid-run: say so, keep serving
            reply = {"ok": False, "error": f"inference failed: {one_line(error)}"}
        _reply(stdout, reply)
        if isinstance(request, dict) and request.get("cmd") == "exit" and reply.get("ok"):
            break
