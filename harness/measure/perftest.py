"""The Android runner path: ``onnxruntime_perf_test`` argv and its output as a runner document.

On a phone without Python the harness pushes an NDK build of ``onnxruntime_perf_test``
(and ``libonnxruntime.so`` for shared builds), runs it with ``-e cpu -m times -r N -x T -I``
and turns its console summary into the same ``mnbench.runner/1`` document the Python
agent prints (``devices/agent/record.py``), with ``samples_ms`` empty and ``reported_ms`` holding
the tool's own summary statistics.

Wording of the summary, by onnxruntime version (``onnxruntime/test/perftest/
performance_runner.cc`` in microsoft/onnxruntime):

- 2019, commit 034db1c2: ``Total time cost:S``, ``Total iterations:N``,
  ``Average time cost:X ms``;
- 2023, commit 77e6dc9a (≈1.15–1.17): ``Session creation time cost: S s``,
  ``First inference time cost: MS ms`` (integer ms), ``Total inference time cost: S s``,
  ``Total inference requests: N``, ``Average inference time cost: X ms``,
  ``Peak working set size: N bytes``, then from ``DumpToFile`` ``Avg CPU usage:N``,
  ``Peak working set size:N``, ``Runs:N`` and ``Min/Max/P50/P90/P95/P99/P999 Latency: S s``;
- 1.23 builds print ``Average inference time cost total: X ms`` (recorded output in
  ArmDeveloperEcosystem/arm-learning-paths, ``performance_onnxruntime_kleidiai_sme2``).

perf_test does exactly one warm-up run (``RunOneIteration<true>``) and reports the peak
RSS of the whole process (``getrusage`` ``ru_maxrss``) as "Peak working set size".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from devices.agent.record import new_document
from mobilenet.errors import UserError

PERF_TEST_WARMUP_ITERATIONS = 1
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"

# (key, pattern, scale to the unit in the key)
_SCALARS: tuple[tuple[str, re.Pattern[str], float], ...] = (
    ("session_create_ms", re.compile(rf"Session creation time cost:\s*{_NUMBER}\s*s\b"), 1e3),
    ("first_inference_ms", re.compile(rf"First inference time cost:\s*{_NUMBER}\s*ms\b"), 1.0),
    ("measure_s", re.compile(rf"Total inference time cost:\s*{_NUMBER}\s*s\b"), 1.0),
    ("measure_s", re.compile(rf"^Total time cost:\s*{_NUMBER}", re.M), 1.0),
    ("mean_ms", re.compile(rf"Average inference time cost(?: total)?:\s*{_NUMBER}\s*ms"), 1.0),
    ("mean_ms", re.compile(rf"^Average time cost:\s*{_NUMBER}\s*ms", re.M), 1.0),
    ("iterations", re.compile(r"Total inference requests:\s*(\d+)"), 1.0),
    ("iterations", re.compile(r"^Total iterations:\s*(\d+)", re.M), 1.0),
    ("iterations", re.compile(r"^Runs:\s*(\d+)", re.M), 1.0),
    ("peak_bytes", re.compile(r"Peak working set size:\s*(\d+)"), 1.0),
    ("cpu_usage_pct", re.compile(rf"Avg CPU usage:\s*{_NUMBER}"), 1.0),
    ("intra_op_threads", re.compile(r"Setting intra_op_num_threads to (\d+)"), 1.0),
)
_PERCENTILES = {"Min": "min", "Max": "max", "P50": "p50", "P90": "p90", "P95": "p95", "P99": "p99"}
_LATENCY_RE = re.compile(rf"^(Min|Max|P50|P90|P95|P99) Latency:\s*{_NUMBER}\s*s\b", re.M)


class PerfTestOutputError(UserError):
    """onnxruntime_perf_test's output holds no latency figure."""


def perf_test_argv(
    binary_remote: str,
    model_remote: str,
    threads: int,
    runs: int,
    lib_dir: str | None,
    taskset_mask: str | None,
) -> list[str]:
    """``env LD_LIBRARY_PATH=DIR [taskset MASK] BIN -e cpu -m times -r N -x T -I MODEL``."""
    if runs < 1:
        raise ValueError("perf_test needs at least one run")
    if threads < 0:
        raise ValueError("threads must be >= 0 (0 lets onnxruntime choose)")
    argv: list[str] = []
    if lib_dir:
        argv += ["env", f"LD_LIBRARY_PATH={lib_dir}"]
    if taskset_mask:
        argv += ["taskset", taskset_mask]
    argv += [binary_remote, "-e", "cpu", "-m", "times", "-r", str(runs), "-x", str(threads)]
    argv += ["-I", model_remote]
    return argv


def parse_perf_test(
    stdout: str,
    stderr: str,
    *,
    model_path: str | None = None,
    model_file_bytes: int | None = None,
    model_sha256: str | None = None,
    runtime_version: str | None = None,
    threads: int | None = None,
    runs: int | None = None,
    settings: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The runner document for one perf_test run; ``PerfTestOutputError`` without latency."""
    text = stdout.replace("\r\n", "\n")
    found: dict[str, float] = {}
    for key, pattern, scale in _SCALARS:
        if key in found:
            continue
        match = pattern.search(text)
        if match:
            found[key] = float(match.group(1)) * scale
    reported: dict[str, float] = {}
    if "mean_ms" in found:
        reported["mean"] = found["mean_ms"]
    for match in _LATENCY_RE.finditer(text):
        reported.setdefault(_PERCENTILES[match.group(1)], float(match.group(2)) * 1e3)
    if not reported:
        tail = _last_line(stderr) or _last_line(stdout) or "no output"
        raise PerfTestOutputError(
            f"onnxruntime_perf_test printed no latency ({tail}); "
            "check the model path, the flags and that the binary runs on the device"
        )

    doc: dict[str, Any] = dict(new_document(model_path or ""))
    doc["status"] = "ok"
    doc["model"] = {
        "path": model_path,
        "file_bytes": model_file_bytes,
        "sha256": model_sha256,
    }
    intra = threads if threads is not None else _int(found.get("intra_op_threads"))
    doc["runtime"] = {
        "name": "onnxruntime",
        "version": runtime_version,
        "available_providers": [],
        "providers": ["CPUExecutionProvider"],
        "session_options": {
            "intra_op_threads": intra,
            "inter_op_threads": None,
            "graph_optimization_level": "all",  # perf_test's default -o 99
            "execution_mode": "sequential",
            "spin": False if "Disabling intra-op thread spinning" in text else None,
        },
    }
    iterations = _int(found.get("iterations"))
    if iterations is None:
        iterations = runs or 0
    doc["timings"] = {
        "session_create_ms": found.get("session_create_ms"),
        "first_inference_ms": found.get("first_inference_ms"),
        "warmup_iterations": PERF_TEST_WARMUP_ITERATIONS,
        "warmup_s": None,
        "measure_s": found.get("measure_s"),
    }
    doc["samples_ms"] = []
    doc["reported_ms"] = reported
    doc["iterations"] = iterations
    doc["stop_reason"] = "fixed"
    doc["settings"] = {
        "tool": "onnxruntime_perf_test",
        "mode": "times",
        "runs": runs,
        "fixed": runs,
        "avg_cpu_usage_pct": found.get("cpu_usage_pct"),
        **(settings or {}),
    }
    doc["memory"] = {
        "peak_rss_after_load_bytes": None,
        "peak_rss_end_bytes": _int(found.get("peak_bytes")),
        "source": "perf_test",
    }
    doc["inputs"] = []
    doc["profile"] = None
    return doc


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
