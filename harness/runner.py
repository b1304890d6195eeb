"""The device-side runner: load one ONNX model, time it, print one JSON document.

This file is the only code that runs on a device. It is pushed as a single file and run as
``python runner.py MODEL [flags]``; it needs the standard library, numpy and onnxruntime
only, and runs on Python 3.8 (no imports from the mnbench packages, no 3.9+ syntax at
runtime). Tests import it and call ``main(argv)``.

What it does, in order (docs/measurement.md, "One trial"):

1. Parse flags; pin the process to ``--cpus`` with ``os.sched_setaffinity`` *before*
   numpy and onnxruntime are imported and the session exists, so every thread they start
   inherits the mask. With ``--cpus`` and ``--threads 0`` the intra-op thread count becomes
   the number of CPUs given: onnxruntime's default pool pins worker i to core i whatever
   the process mask (measured with 1.31), which would move work off the chosen cores.
   ``FACTS.thread_affinity`` (the union over all threads) shows what was in force.
2. Record host facts (CPU model, affinity, per-core frequency and governor, thermal zones,
   load average) -- again at the end, so drift during the run is visible.
3. Create the session with the requested options and time it; read peak RSS.
4. Make seeded random inputs, bind them once as OrtValues through IO binding, bind the
   outputs once (to the buffers of the first inference), time the first inference.
5. Warm up until the median of the last window is within 2 % of the previous window's
   (windows of at least 5 iterations and 0.1 s; capped by ``--warmup-max`` iterations and
   ``--warmup-max-time`` seconds).
6. Measure: the hot loop is ``perf_counter_ns(); run_with_iobinding(); perf_counter_ns()``
   plus one list append; the stopping rule is checked only every 0.2 s. After at least
   ``--min-samples`` samples and ``--min-time`` seconds it stops once the distribution-free
   95 % confidence interval of the median (binomial order statistics, as asv_runner's
   ``statistics.quantile_ci``) has a relative half-width <= ``--target-ci``; ``--max-time``
   is a hard cap (it wins over ``--min-samples``), ``--max-samples`` likewise. ``--fixed N``
   runs exactly N timed iterations. The garbage collector is off during the timed loop.
7. Optionally (``--profile``) create a second session with onnxruntime's profiler on, run
   it ``--profile-runs`` times, summarise the per-node ``*_kernel_time`` events (the first
   run is left out) and delete the profile file.

Agent mode (``--serve``): steps 1-4 as above, then the document (``samples_ms`` empty, plus
``"agent": {"pid": int, "pgid": int}``) is printed as the first line and the runner serves
line-delimited JSON commands on stdin, one reply line each on stdout, until ``exit`` or
end of input; the session stays loaded, so bursts measure one process over time::

    {"cmd": "warmup"}          -> {"ok": true, "warmup_iterations": int, "warmup_s": float}
    {"cmd": "burst", "n": K}   -> {"ok": true, "samples_ms": [float] * K,
                                    "start_unix": float, "burst_s": float}
    {"cmd": "facts"}           -> {"ok": true, "facts": FACTS, "peak_rss_bytes": int | null}
    {"cmd": "exit"}            -> {"ok": true}, then exit 0
    anything else / a failure  -> {"ok": false, "error": "one line"}

A burst times K inferences back to back with the garbage collector off, as the measuring
loop does. The harness suspends the process group between bursts (SIGSTOP/SIGCONT), so
the agent holds no lock and keeps no timer that a pause could break.

Exit codes: 0 ok; 1 the model failed (onnxruntime rejected it, or inference failed);
2 usage or setup error (bad flag, missing model file, unavailable provider, bad CPU list,
onnxruntime or numpy not importable; also a bug in this script, with its traceback on
stderr). On every exit a JSON document is printed on stdout (one line); on failure
``status`` is ``"error"`` and ``error`` is one line. A crash of the interpreter prints
nothing; the harness treats that as a failure of its own kind.

Document (``SCHEMA = "mnbench.runner/1"``; keys marked + are additions to the base layout)::

    {
      "schema": "mnbench.runner/1",
      "status": "ok" | "error",
      "error": null | "one line",
      "model": {"path": str, "file_bytes": int | null, "sha256": str | null},
      "runtime": {"name": "onnxruntime", "version": str | null,
                  "available_providers": [str], "providers": [str],
                  "session_options": {"intra_op_threads": int,  # as used (see 1.)
                                      "inter_op_threads": int,
                                      "graph_optimization_level":
                                          "disable" | "basic" | "extended" | "all",
                                      "execution_mode": "sequential" | "parallel",
                                      "spin": bool}},
      "host_before": FACTS, "host_after": FACTS,
      "timings": {"session_create_ms": float | null, "first_inference_ms": float | null,
                  "warmup_iterations": int, "warmup_s": float (+), "measure_s": float},
      "samples_ms": [float, ...],          # one per timed inference, ns resolution
      "reported_ms": null,                 # set only by parsers of other tools' output
      "median_ci_ms": [float, float] | null,   # (+) 95 % CI of the median, null if unbounded
      "iterations": int,                   # == len(samples_ms)
      "stop_reason": "ci_target" | "max_time" | "max_samples" | "fixed" | null,
      "settings": {"target_ci": float, "min_samples": int, "max_samples": int,
                   "min_time_s": float, "max_time_s": float, "warmup_max": int,
                   "warmup_max_time_s": float (+), "fixed": int | null (+),
                   "profile_runs": int | null (+), "seed": int, "cpus": [int] | null},
      "memory": {"peak_rss_after_load_bytes": int | null, "peak_rss_end_bytes": int | null,
                 "source": "VmHWM" | "ru_maxrss" | null},
      "inputs": [{"name": str, "shape": [int], "dtype": str}],     # as fed
      "profile": null | {node_name: {"op_type": str, "median_us": float, "count": int}},
      "process_cpu_s": float (+),   # user + system CPU time of this run (all threads)
      "reference_ms": float | null (+)  # the reference workload's median (REFERENCE_*)
    }
    In an error document the parts not reached stay null or empty ("settings" and
    "session_options" are null only when the flags could not be parsed).

    FACTS = {"platform": str, "machine": str, "python": str, "cpu_model": str | null,
             "logical_cores": int | null, "affinity": [int] | null,
             "thread_affinity": [int] | null (+),   # union over all threads
             "cpus": [{"cpu": int, "cur_khz": int | null, "max_khz": int | null,
                       "scaling_max_khz": int | null (+), "scaling_min_khz": int | null (+),
                       "governor": str | null}],
             "thermal": [{"zone": str, "type": str, "temp_c": float}],
             "loadavg": [float, float, float] | null, "time_unix": float}

Sources: asv_runner ``statistics.py`` (order-statistic CI of a quantile), pyperf and
androidx.benchmark (metadata before/after, warm-up until stable), onnxruntime's Python API
(``SessionOptions``, ``io_binding``, ``enable_profiling``) and its profiler's Chrome-trace
event format (``onnxruntime/core/common/profiler.cc``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from typing import Any, NoReturn, Sequence

SCHEMA = "mnbench.runner/1"

EXIT_OK = 0
EXIT_MODEL = 1
EXIT_USAGE = 2

DEFAULT_TARGET_CI = 0.01
DEFAULT_MIN_SAMPLES = 10
DEFAULT_MAX_SAMPLES = 100000
DEFAULT_MIN_TIME_S = 0.5
DEFAULT_MAX_TIME_S = 10.0
DEFAULT_WARMUP_MAX = 10000
DEFAULT_WARMUP_MAX_TIME_S = 2.0
DEFAULT_PROFILE_RUNS = 20
DEFAULT_SEED = 0

CONFIDENCE = 0.95
REFERENCE_LOOPS = 100000  # one repeat of the reference workload: this many loop iterations
REFERENCE_REPEATS = 5
CHECK_INTERVAL_NS = 200000000  # the stopping rule is evaluated at most every 0.2 s
WARMUP_WINDOW_MIN_ITERATIONS = 5
WARMUP_WINDOW_MIN_NS = 100000000  # 0.1 s
WARMUP_STABLE_REL = 0.02

OPT_LEVELS = ("disable", "basic", "extended", "all")
_OPT_LEVEL_ATTR = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# onnxruntime's tensor type strings -> numpy dtype names.
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

# /proc/cpuinfo "CPU part" values of common Arm cores (Arm's technical reference manuals).
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
    "0xd80": "Cortex-A520",
    "0xd81": "Cortex-A720",
    "0xd82": "Cortex-X4",
}

HELP_EPILOG = """\
measurement defaults: warm-up until two consecutive windows (>= 5 iterations and >= 0.1 s
each) have medians within 2 %, at most --warmup-max iterations / --warmup-max-time s; then
at least --min-samples samples and --min-time s, stopping when the 95 % CI of the median
has relative half-width <= --target-ci, or at --max-time s / --max-samples (hard caps).
--fixed N replaces the adaptive rule by exactly N timed iterations (warm-up still runs;
--warmup-max 0 skips it).

output: one JSON document (schema mnbench.runner/1) on stdout.
exit codes: 0 ok, 1 model rejected or inference failed, 2 usage or setup error.

examples:
  python runner.py mobilenet_v1_1.0_224.onnx --threads 4 --cpus 4-7
  python runner.py model.onnx --fixed 100 --warmup-max 10 --no-spin
  python runner.py model.onnx --shape input=8x3x160x160 --profile
"""


class UsageError(Exception):
    """A bad flag or a setup problem: exit code 2."""


class ModelError(Exception):
    """onnxruntime rejected the model or failed to run it: exit code 1."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# --------------------------------------------------------------------------- flag parsing


def parse_cpu_list(text: str) -> list[int]:
    """``"0,1,4-7"`` -> ``[0, 1, 4, 5, 6, 7]`` (sorted, unique)."""
    cpus: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty entry in CPU list {text!r}")
        if "-" in part:
            first, _, last = part.partition("-")
            lo, hi = int(first), int(last)
            if lo < 0 or hi < lo:
                raise ValueError(f"bad CPU range {part!r}")
            cpus.update(range(lo, hi + 1))
        else:
            cpu = int(part)
            if cpu < 0:
                raise ValueError(f"negative CPU {part!r}")
            cpus.add(cpu)
    return sorted(cpus)


def parse_shape(text: str) -> tuple[str, list[int]]:
    """``"input=1x3x224x224"`` -> ``("input", [1, 3, 224, 224])``."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name or not dims:
        raise ValueError(f"expected NAME=D0xD1x..., got {text!r}")
    shape = [int(d) for d in dims.lower().split("x")]
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in {text!r}")
    return name, shape


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runner.py",
        description="Time one ONNX model with onnxruntime and print one JSON document.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="path to the .onnx file")
    session = parser.add_argument_group("session options")
    session.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="intra-op threads; 0 = onnxruntime's default (default: 0)",
    )
    session.add_argument(
        "--inter-threads",
        type=int,
        default=0,
        metavar="N",
        help="inter-op threads (parallel mode); 0 = default (default: 0)",
    )
    session.add_argument(
        "--opt-level",
        choices=OPT_LEVELS,
        default="all",
        help="graph optimization level (default: all)",
    )
    session.add_argument(
        "--provider",
        default="CPUExecutionProvider",
        metavar="NAME",
        help="execution provider (default: CPUExecutionProvider)",
    )
    session.add_argument(
        "--spin",
        dest="spin",
        action="store_true",
        default=True,
        help="let intra-op threads spin while waiting (default)",
    )
    session.add_argument(
        "--no-spin",
        dest="spin",
        action="store_false",
        help="session.intra_op.allow_spinning = 0",
    )
    session.add_argument(
        "--sequential",
        dest="parallel",
        action="store_false",
        default=False,
        help="sequential execution mode (default)",
    )
    session.add_argument(
        "--parallel",
        dest="parallel",
        action="store_true",
        help="parallel execution mode",
    )
    session.add_argument(
        "--cpus",
        default=None,
        metavar="LIST",
        help="pin the process (and onnxruntime's threads) to these CPUs, e.g. 0,1,4-7",
    )
    data = parser.add_argument_group("inputs")
    data.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=1x3x224x224",
        help="shape of an input with symbolic dimensions (repeatable); "
        "otherwise symbolic dimensions are 1",
    )
    data.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the random input data (default: {DEFAULT_SEED})",
    )
    limits = parser.add_argument_group("measurement")
    limits.add_argument(
        "--warmup-max",
        type=int,
        default=DEFAULT_WARMUP_MAX,
        metavar="N",
        help=f"cap on warm-up iterations; 0 skips warm-up (default: {DEFAULT_WARMUP_MAX})",
    )
    limits.add_argument(
        "--warmup-max-time",
        type=float,
        default=DEFAULT_WARMUP_MAX_TIME_S,
        metavar="S",
        help=f"cap on warm-up seconds (default: {DEFAULT_WARMUP_MAX_TIME_S:g})",
    )
    limits.add_argument(
        "--target-ci",
        type=float,
        default=DEFAULT_TARGET_CI,
        metavar="REL",
        help="stop when the 95%% CI of the median has this relative half-width "
        f"(default: {DEFAULT_TARGET_CI:g})",
    )
    limits.add_argument(
        "--min-samples",
        type=int,
        default=DEFAULT_MIN_SAMPLES,
        metavar="N",
        help=f"at least this many timed samples (default: {DEFAULT_MIN_SAMPLES})",
    )
    limits.add_argument(
        "--max-samples",
        type=int,
        default=DEFAULT_MAX_SAMPLES,
        metavar="N",
        help=f"at most this many timed samples (default: {DEFAULT_MAX_SAMPLES})",
    )
    limits.add_argument(
        "--min-time",
        type=float,
        default=DEFAULT_MIN_TIME_S,
        metavar="S",
        help=f"measure for at least this many seconds (default: {DEFAULT_MIN_TIME_S:g})",
    )
    limits.add_argument(
        "--max-time",
        type=float,
        default=DEFAULT_MAX_TIME_S,
        metavar="S",
        help=f"measure for at most this many seconds (default: {DEFAULT_MAX_TIME_S:g})",
    )
    limits.add_argument(
        "--fixed",
        type=int,
        default=None,
        metavar="N",
        help="exactly N timed iterations, no adaptive stopping",
    )
    limits.add_argument(
        "--serve",
        action="store_true",
        help="agent mode: load the model, then serve JSON commands on stdin (see the module "
        "docstring)",
    )
    limits.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, run a separate profiling session and summarise per-node times",
    )
    limits.add_argument(
        "--profile-runs",
        type=int,
        default=DEFAULT_PROFILE_RUNS,
        metavar="K",
        help=f"inferences in the profiling session (default: {DEFAULT_PROFILE_RUNS})",
    )
    return parser


def _validate(args: argparse.Namespace) -> None:
    checks = [
        (args.threads >= 0, "--threads must be >= 0"),
        (args.inter_threads >= 0, "--inter-threads must be >= 0"),
        (args.warmup_max >= 0, "--warmup-max must be >= 0"),
        (args.warmup_max_time >= 0, "--warmup-max-time must be >= 0"),
        (0 < args.target_ci < 1, "--target-ci must be between 0 and 1"),
        (args.min_samples >= 1, "--min-samples must be >= 1"),
        (args.max_samples >= args.min_samples, "--max-samples must be >= --min-samples"),
        (args.min_time >= 0, "--min-time must be >= 0"),
        (args.max_time > 0, "--max-time must be > 0"),
        (args.max_time >= args.min_time, "--max-time must be >= --min-time"),
        (args.fixed is None or args.fixed >= 1, "--fixed must be >= 1"),
        (args.profile_runs >= 2, "--profile-runs must be >= 2"),
    ]
    for flag in ("warmup_max_time", "target_ci", "min_time", "max_time"):
        if not math.isfinite(getattr(args, flag)):
            raise UsageError(f"--{flag.replace('_', '-')} must be a finite number")
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


# --------------------------------------------------------------------------- statistics


def _binom_pmf(n: int, k: int, p: float) -> float:
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    return math.exp(log_pmf)


def order_statistic_ci_ranks(
    n: int, q: float = 0.5, confidence: float = CONFIDENCE
) -> tuple[int | None, int | None]:
    """0-based ranks (lo, hi) of the sorted samples bounding a CI of the q-quantile.

    With K ~ Binomial(n, q) and F its CDF, ``lo`` is the largest k with F(k) <= alpha/2
    and ``hi`` the smallest k with F(k) >= 1 - alpha/2, so that
    P(x_(lo) < quantile < x_(hi)) >= F(hi) - F(lo) >= confidence (asv_runner's
    ``quantile_ci``). ``None`` means the bound is unbounded (too few samples).
    """
    if n < 1:
        return None, None
    alpha = 1.0 - confidence
    pa = alpha / 2.0
    pb = 1.0 - pa
    # Skip the far lower tail: below nq - 12 sd the binomial mass is < 1e-30.
    sd = math.sqrt(n * q * (1.0 - q))
    k0 = max(0, int(n * q - 12.0 * sd) - 1)
    lo = k0 - 1 if k0 > 0 else None
    cdf = 0.0
    for k in range(k0, n):
        cdf += _binom_pmf(n, k, q)
        if cdf <= pa:
            lo = k
        if cdf >= pb:
            return lo, k
    return lo, None


def quantile_ci(
    values: Sequence[float], q: float = 0.5, confidence: float = CONFIDENCE
) -> tuple[float, float | None, float | None]:
    """(quantile, ci_low, ci_high) of ``values``; a bound is ``None`` when unbounded.

    The quantile interpolates linearly between order statistics (numpy's default and
    asv's ``quantile``); the CI is the order-statistic interval above.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    z = (n - 1) * q
    j = math.floor(z)
    frac = z - j
    m = ordered[-1] if j >= n - 1 else (1.0 - frac) * ordered[j] + frac * ordered[j + 1]
    lo, hi = order_statistic_ci_ranks(n, q, confidence)
    return (
        m,
        ordered[lo] if lo is not None else None,
        ordered[hi] if hi is not None else None,
    )


def relative_ci_half_width(median: float, ci_low: float | None, ci_high: float | None) -> float:
    """Half the CI width over the median; infinite when the CI is unbounded."""
    if ci_low is None or ci_high is None or median <= 0:
        return math.inf
    return (ci_high - ci_low) / 2.0 / median


def _median_ci_sorted(sorted_ns: Any) -> tuple[float, float | None, float | None]:
    """Median and 95 % CI bounds of an already-sorted numpy array."""
    n = int(sorted_ns.shape[0])
    mid = (n - 1) / 2.0
    median = float(sorted_ns[math.floor(mid)] + sorted_ns[math.ceil(mid)]) / 2.0
    lo, hi = order_statistic_ci_ranks(n)
    return (
        median,
        float(sorted_ns[lo]) if lo is not None else None,
        float(sorted_ns[hi]) if hi is not None else None,
    )


# --------------------------------------------------------------------------- host facts


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, ValueError):
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _numeric_suffix(path: str, prefix: str) -> int:
    name = os.path.basename(path)
    try:
        return int(name[len(prefix) :])
    except ValueError:
        return -1


def cpu_model() -> str | None:
    """CPU model from /proc/cpuinfo ("model name", "Hardware", "CPU part"), else platform."""
    text = _read("/proc/cpuinfo")
    if text:
        fields: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), []).append(value.strip())
        for key in ("model name", "hardware"):
            values = [v for v in fields.get(key, []) if v]
            if values:
                return values[0]
        parts = []
        for part in fields.get("cpu part", []):
            name = _ARM_PARTS.get(part.lower(), "CPU part " + part)
            if name not in parts:
                parts.append(name)
        if parts:
            return " + ".join(parts)
    processor = platform.processor()
    return processor or None


def current_affinity() -> list[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return sorted(getter(0))
    except OSError:
        return None


def thread_affinity() -> list[int] | None:
    """Union of the CPUs every thread of this process may run on (/proc/self/task)."""
    cpus: set[int] = set()
    for status_path in glob.glob("/proc/self/task/*/status"):
        status = _read(status_path)
        if not status:
            continue
        for line in status.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                with contextlib.suppress(ValueError):
                    cpus.update(parse_cpu_list(line.split(":", 1)[1]))
    return sorted(cpus) if cpus else None


def collect_host_facts() -> dict[str, Any]:
    """Facts about the host at this moment; missing files give null/empty, never raise."""
    cpus = []
    cpu_dirs = glob.glob("/sys/devices/system/cpu/cpu[0-9]*")
    for cpu_dir in sorted(cpu_dirs, key=lambda p: _numeric_suffix(p, "cpu")):
        index = _numeric_suffix(cpu_dir, "cpu")
        if index < 0:
            continue
        freq = os.path.join(cpu_dir, "cpufreq")
        cpus.append(
            {
                "cpu": index,
                "cur_khz": _read_int(os.path.join(freq, "scaling_cur_freq")),
                "max_khz": _read_int(os.path.join(freq, "cpuinfo_max_freq")),
                "scaling_max_khz": _read_int(os.path.join(freq, "scaling_max_freq")),
                "scaling_min_khz": _read_int(os.path.join(freq, "scaling_min_freq")),
                "governor": _read(os.path.join(freq, "scaling_governor")),
            }
        )
    thermal = []
    zones = glob.glob("/sys/class/thermal/thermal_zone*")
    for zone in sorted(zones, key=lambda p: _numeric_suffix(p, "thermal_zone")):
        millideg = _read_int(os.path.join(zone, "temp"))
        if millideg is None:
            continue
        thermal.append(
            {
                "zone": os.path.basename(zone),
                "type": _read(os.path.join(zone, "type")) or "",
                "temp_c": millideg / 1000.0,
            }
        )
    try:
        loadavg: list[float] | None = [float(x) for x in os.getloadavg()]
    except (OSError, AttributeError):
        loadavg = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity": current_affinity(),
        "thread_affinity": thread_affinity(),
        "cpus": cpus,
        "thermal": thermal,
        "loadavg": loadavg,
        "time_unix": time.time(),
    }


def reference_workload_ms() -> float:
    """The median time of a fixed pure-Python loop: the same work in every trial of a run.

    It depends on the core's clock and on what else shares it, not on the model, so its
    spread over a run says how much the device itself drifted (the report's stability).
    """
    times = []
    for _ in range(REFERENCE_REPEATS):
        start = time.perf_counter_ns()
        total = 0
        for i in range(REFERENCE_LOOPS):
            total += i * i % 7
        times.append(time.perf_counter_ns() - start)
    times.sort()
    return _ms(times[len(times) // 2])


def peak_rss() -> tuple[int | None, str | None]:
    """(peak resident set size in bytes, source): VmHWM, else ru_maxrss, else (None, None)."""
    status = _read("/proc/self/status")
    if status:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                fields = line.split()
                try:
                    return int(fields[1]) * 1024, "VmHWM"
                except (IndexError, ValueError):
                    break
    try:
        import resource  # not on Windows

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError, ValueError):
        return None, None
    if maxrss <= 0:
        return None, None
    # Linux reports KiB, macOS bytes.
    return (int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024), "ru_maxrss"


def model_facts(path: str) -> dict[str, Any]:
    facts: dict[str, Any] = {"path": path, "file_bytes": None, "sha256": None}
    if not os.path.isfile(path):
        raise UsageError(f"model file not found: {path} (push it to the device first)")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    facts["file_bytes"] = os.path.getsize(path)
    facts["sha256"] = digest.hexdigest()
    return facts


# --------------------------------------------------------------------------- the document


def new_document(model_path: str) -> dict[str, Any]:
    """The document with every key present; fields fill in as the run gets further."""
    return {
        "schema": SCHEMA,
        "status": "error",
        "error": None,
        "model": {"path": model_path, "file_bytes": None, "sha256": None},
        "runtime": {
            "name": "onnxruntime",
            "version": None,
            "available_providers": [],
            "providers": [],
            "session_options": None,
        },
        "host_before": None,
        "host_after": None,
        "timings": {
            "session_create_ms": None,
            "first_inference_ms": None,
            "warmup_iterations": 0,
            "warmup_s": 0.0,
            "measure_s": 0.0,
        },
        "samples_ms": [],
        "reported_ms": None,
        "median_ci_ms": None,
        "iterations": 0,
        "stop_reason": None,
        "settings": None,
        "memory": {"peak_rss_after_load_bytes": None, "peak_rss_end_bytes": None, "source": None},
        "inputs": [],
        "profile": None,
        "process_cpu_s": None,
        "reference_ms": None,
    }


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, (UsageError, ModelError)):
        text = f"{type(error).__name__}: {text}"
    return text[:1000]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN/inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _ms(ns: float) -> float:
    return round(ns / 1e6, 6)


# --------------------------------------------------------------------------- onnxruntime


def session_options(ort: Any, args: argparse.Namespace, profile_prefix: str | None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = args.inter_threads
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _OPT_LEVEL_ATTR[args.opt_level]
    )
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if args.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if args.spin else "0")
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def create_session(ort: Any, args: argparse.Namespace, profile_prefix: str | None) -> Any:
    options = session_options(ort, args, profile_prefix)
    try:
        return ort.InferenceSession(args.model, sess_options=options, providers=[args.provider])
    except Exception as error:
        raise ModelError(f"onnxruntime rejected the model: {one_line(error)}") from error


def make_inputs(
    np: Any, session: Any, shapes: dict[str, list[int]], seed: int
) -> list[tuple[str, Any]]:
    """Seeded random arrays, one per declared input; symbolic dims = 1 unless --shape."""
    rng = np.random.default_rng(seed)
    declared = session.get_inputs()
    unknown = set(shapes) - {node.name for node in declared}
    if unknown:
        raise UsageError(
            f"--shape names an input the model does not have: {', '.join(sorted(unknown))} "
            f"(inputs: {', '.join(node.name for node in declared)})"
        )
    arrays = []
    for node in declared:
        dtype = _ORT_DTYPES.get(node.type)
        if dtype is None:
            raise ModelError(f"input {node.name!r} has unsupported type {node.type}")
        if node.name in shapes:
            shape = shapes[node.name]
            if len(shape) != len(node.shape):
                raise UsageError(
                    f"--shape {node.name} has {len(shape)} dimensions, "
                    f"the model declares {len(node.shape)}"
                )
            for axis, (wanted, declared_dim) in enumerate(zip(shape, node.shape)):
                if isinstance(declared_dim, int) and declared_dim >= 0 and wanted != declared_dim:
                    raise UsageError(
                        f"--shape {node.name}: dimension {axis} is fixed at {declared_dim} "
                        f"by the model, not {wanted}"
                    )
        else:
            shape = [d if isinstance(d, int) and d >= 0 else 1 for d in node.shape]
        if dtype.startswith("float"):
            array = rng.standard_normal(shape).astype(dtype)
        elif dtype == "bool":
            array = rng.integers(0, 2, size=shape).astype(bool)
        else:
            array = rng.integers(0, 10, size=shape).astype(dtype)
        arrays.append((node.name, np.ascontiguousarray(array)))
    return arrays


def bind(ort: Any, session: Any, arrays: list[tuple[str, Any]]) -> tuple[Any, list[Any]]:
    """IO binding with inputs bound once as OrtValues and outputs bound to CPU."""
    binding = session.io_binding()
    keep = []
    for name, array in arrays:
        value = ort.OrtValue.ortvalue_from_numpy(array)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for node in session.get_outputs():
        binding.bind_output(node.name, "cpu")
    return binding, keep


def rebind_outputs(session: Any, binding: Any) -> list[Any]:
    """After the first run, bind the outputs it produced, so later runs reuse the buffers."""
    values = binding.get_outputs()
    for node, value in zip(session.get_outputs(), values):
        binding.bind_ortvalue_output(node.name, value)
    return list(values)


def warm_up(run: Any, binding: Any, max_iterations: int, max_time_s: float) -> tuple[int, float]:
    """Run until two consecutive windows have medians within 2 %, or a cap; (count, s)."""
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(max_time_s * 1e9)
    count = 0
    previous_median: float | None = None
    window: list[int] = []
    window_start = start
    while count < max_iterations:
        t0 = clock()
        run(binding)
        t1 = clock()
        window.append(t1 - t0)
        count += 1
        if t1 >= deadline:
            break
        if (
            len(window) >= WARMUP_WINDOW_MIN_ITERATIONS
            and t1 - window_start >= WARMUP_WINDOW_MIN_NS
        ):
            window.sort()
            middle = len(window) // 2
            median = (window[middle] + window[(len(window) - 1) // 2]) / 2.0
            if (
                previous_median is not None
                and abs(median - previous_median) <= WARMUP_STABLE_REL * previous_median
            ):
                break
            previous_median = median
            window = []
            window_start = t1
    return count, (clock() - start) / 1e9


def measure(
    np: Any, run: Any, binding: Any, args: argparse.Namespace
) -> tuple[list[int], str, float]:
    """Timed samples in ns, the stop reason and the seconds spent measuring."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        if args.fixed is not None:
            return burst(run, binding, args.fixed), "fixed", (clock() - start) / 1e9
        min_ns = int(args.min_time * 1e9)
        max_ns = int(args.max_time * 1e9)
        deadline = start + max_ns
        next_check = start + min_ns
        reason = "max_samples"
        for _ in range(args.max_samples):
            t0 = clock()
            run(binding)
            t1 = clock()
            append(t1 - t0)
            if t1 >= next_check:
                if t1 >= deadline:
                    reason = "max_time"
                    break
                if len(samples) >= args.min_samples:
                    ordered = np.sort(np.asarray(samples, dtype=np.int64))
                    median, low, high = _median_ci_sorted(ordered)
                    if relative_ci_half_width(median, low, high) <= args.target_ci:
                        reason = "ci_target"
                        break
                next_check = min(clock() + CHECK_INTERVAL_NS, deadline)
        return samples, reason, (clock() - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()


def profile_nodes(ort: Any, args: argparse.Namespace, arrays: list[tuple[str, Any]]) -> Any:
    """Per-node kernel times from a separate profiling session (first run left out)."""
    workdir = tempfile.mkdtemp(prefix="mnbench_profile_")
    try:
        session = create_session(ort, args, os.path.join(workdir, "profile"))
        binding, _keep = bind(ort, session, arrays)
        for _ in range(args.profile_runs):
            session.run_with_iobinding(binding)
        path = session.end_profiling()
        with open(path) as handle:
            events = json.load(handle)
    finally:
        for leftover in glob.glob(os.path.join(workdir, "*")):
            with contextlib.suppress(OSError):
                os.remove(leftover)
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
    if isinstance(events, dict):  # some versions wrap events in {"traceEvents": [...]}
        events = events.get("traceEvents", [])
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if isinstance(e, dict) and e.get("name") == "model_run" and "ts" in e and "dur" in e
    )
    first_run = runs[0] if runs else None
    durations: dict[str, list[float]] = {}
    op_types: dict[str, str] = {}
    suffix = "_kernel_time"
    for event in events:
        if not isinstance(event, dict) or event.get("cat") != "Node":
            continue
        name = event.get("name", "")
        if not name.endswith(suffix) or "dur" not in event:
            continue
        if first_run is not None and first_run[0] <= event.get("ts", -1) <= first_run[1]:
            continue
        node = name[: -len(suffix)]
        durations.setdefault(node, []).append(float(event["dur"]))
        op_types[node] = str(event.get("args", {}).get("op_name", ""))
    summary = {}
    for node, values in durations.items():
        values.sort()
        n = len(values)
        median = (values[(n - 1) // 2] + values[n // 2]) / 2.0
        summary[node] = {"op_type": op_types[node], "median_us": median, "count": n}
    return summary


# --------------------------------------------------------------------------- agent mode


def burst(run: Any, binding: Any, count: int) -> list[int]:
    """``count`` inferences back to back, each timed in ns, the garbage collector off."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(count):
            t0 = clock()
            run(binding)
            t1 = clock()
            append(t1 - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _reply(stream: Any, message: dict[str, Any]) -> None:
    stream.write(json.dumps(_finite(message), separators=(",", ":"), allow_nan=False) + "\n")
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
            "samples_ms": [_ms(ns) for ns in samples],
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
    run: Any, binding: Any, args: argparse.Namespace, doc: dict[str, Any], stdin: Any, stdout: Any
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


# --------------------------------------------------------------------------- main


def _run(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    shapes: dict[str, list[int]] = {}
    for text in args.shape:
        try:
            name, shape = parse_shape(text)
        except ValueError as error:
            raise UsageError(f"--shape: {error}") from error
        shapes[name] = shape
    cpus = None
    if args.cpus is not None:
        try:
            cpus = parse_cpu_list(args.cpus)
        except ValueError as error:
            raise UsageError(f"--cpus: {error}") from error
        if args.threads == 0:
            # onnxruntime's default pool pins worker i to core i whatever the process mask,
            # so its workers would escape --cpus; an explicit count leaves them unpinned.
            args.threads = len(cpus)
    doc["settings"] = {
        "target_ci": args.target_ci,
        "min_samples": args.min_samples,
        "max_samples": args.max_samples,
        "min_time_s": args.min_time,
        "max_time_s": args.max_time,
        "warmup_max": args.warmup_max,
        "warmup_max_time_s": args.warmup_max_time,
        "fixed": args.fixed,
        "profile_runs": args.profile_runs if args.profile else None,
        "seed": args.seed,
        "cpus": cpus,
    }
    doc["runtime"]["session_options"] = {
        "intra_op_threads": args.threads,
        "inter_op_threads": args.inter_threads,
        "graph_optimization_level": args.opt_level,
        "execution_mode": "parallel" if args.parallel else "sequential",
        "spin": bool(args.spin),
    }
    _validate(args)
    if cpus is not None:
        setter = getattr(os, "sched_setaffinity", None)
        if setter is None:
            raise UsageError("--cpus is not supported on this platform (no sched_setaffinity)")
        try:
            setter(0, cpus)
        except (OSError, ValueError) as error:
            raise UsageError(
                f"--cpus {args.cpus}: cannot pin to these CPUs ({one_line(error)}); "
                f"allowed: {current_affinity()}"
            ) from error
    doc["host_before"] = collect_host_facts()
    doc["reference_ms"] = reference_workload_ms()
    doc["model"] = model_facts(args.model)

    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as error:
        raise UsageError(f"cannot import numpy/onnxruntime: {one_line(error)}") from error
    doc["runtime"]["version"] = ort.__version__
    available = list(ort.get_available_providers())
    doc["runtime"]["available_providers"] = available
    if args.provider not in available:
        raise UsageError(
            f"provider {args.provider} is not available; available: {', '.join(available)}"
        )

    t0 = time.perf_counter_ns()
    session = create_session(ort, args, None)
    t1 = time.perf_counter_ns()
    doc["timings"]["session_create_ms"] = _ms(t1 - t0)
    doc["runtime"]["providers"] = list(session.get_providers())
    rss, source = peak_rss()
    doc["memory"]["peak_rss_after_load_bytes"] = rss
    doc["memory"]["source"] = source

    arrays = make_inputs(np, session, shapes, args.seed)
    doc["inputs"] = [
        {"name": name, "shape": [int(d) for d in array.shape], "dtype": str(array.dtype)}
        for name, array in arrays
    ]
    binding, _keep_inputs = bind(ort, session, arrays)
    run = session.run_with_iobinding
    try:
        t0 = time.perf_counter_ns()
        run(binding)
        t1 = time.perf_counter_ns()
        doc["timings"]["first_inference_ms"] = _ms(t1 - t0)
        _keep_outputs = rebind_outputs(session, binding)
        if args.serve:
            rss, source = peak_rss()
            doc["memory"]["peak_rss_end_bytes"] = rss
            doc["memory"]["source"] = source
            serve(run, binding, args, doc, sys.stdin, sys.stdout)
            return
        if args.warmup_max > 0:
            count, seconds = warm_up(run, binding, args.warmup_max, args.warmup_max_time)
            doc["timings"]["warmup_iterations"] = count
            doc["timings"]["warmup_s"] = round(seconds, 6)
        samples_ns, reason, measure_s = measure(np, run, binding, args)
    except (UsageError, ModelError):
        raise
    except Exception as error:
        raise ModelError(f"inference failed: {one_line(error)}") from error
    doc["timings"]["measure_s"] = round(measure_s, 6)
    doc["samples_ms"] = [_ms(ns) for ns in samples_ns]
    doc["iterations"] = len(samples_ns)
    doc["stop_reason"] = reason
    _median, low, high = quantile_ci(samples_ns)
    if low is not None and high is not None:
        doc["median_ci_ms"] = [_ms(low), _ms(high)]

    if args.profile:
        try:
            doc["profile"] = profile_nodes(ort, args, arrays)
        except (UsageError, ModelError):
            raise
        except Exception as error:
            raise ModelError(f"profiling failed: {one_line(error)}") from error
    rss, source = peak_rss()
    doc["memory"]["peak_rss_end_bytes"] = rss
    doc["memory"]["source"] = source


def main(argv: Sequence[str] | None = None) -> int:
    """Run the runner on ``argv`` (without the program name), print the document, exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # The harness puts MODEL first; used only if the flags cannot be parsed.
    model_path = argv[0] if argv and not argv[0].startswith("-") else ""
    doc = new_document(model_path)
    start_cpu = os.times()
    code = EXIT_OK
    try:
        args = parser.parse_args(argv)
        doc["model"]["path"] = args.model
        _run(args, doc)
        if doc.get("agent"):
            return EXIT_OK  # agent mode: its document was the ready line
        doc["status"] = "ok"
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    except UsageError as error:
        doc["error"] = one_line(error)
        code = EXIT_USAGE
    except ModelError as error:
        doc["error"] = one_line(error)
        code = EXIT_MODEL
    except MemoryError as error:
        doc["error"] = f"out of memory: {one_line(error)}"
        code = EXIT_MODEL
    except Exception as error:  # a bug in the runner: still a document, traceback on stderr
        traceback.print_exc()
        doc["error"] = f"runner bug: {one_line(error)}"
        code = EXIT_USAGE
    if doc["host_before"] is None:
        doc["host_before"] = collect_host_facts()
    doc["host_after"] = collect_host_facts()
    end_cpu = os.times()
    doc["process_cpu_s"] = round(
        (end_cpu.user + end_cpu.system) - (start_cpu.user + start_cpu.system), 6
    )
    try:
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a non-finite flag value (e.g. --max-time inf) echoed in settings
        text = json.dumps(_finite(doc), separators=(",", ":"), allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
