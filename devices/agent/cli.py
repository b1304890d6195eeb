"""The agent's command line: load one ONNX model, time it, print one JSON document.

Run on a device as ``python3 agent.pyz MODEL [flags]`` (``bundle.py`` builds the zipapp) or
here as ``python -m devices.agent MODEL [flags]``; tests call ``main(argv)``.

Several models (``agent.pyz A.onnx B.onnx ...``) are a *batch*: each is measured as below in
turn, in its own session (the previous one is released first), and each gets its own
document, one line each, in the order given, carrying ``batch`` ({"index", "size"}). A batch
pays the interpreter's and onnxruntime's start once (seconds on an emulated board, see
docs/measurement.md), so it suits many small measurements (``mnbench predict``'s probes); it
is not a fresh-process trial. A model that fails gets its error document and the batch goes on. The
process's peak RSS covers every model so far, so after the first a document's peak RSS
fields are null.

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

Exit codes: 0 ok; 1 the model failed (onnxruntime rejected it, or inference failed);
2 usage or setup error (bad flag, missing model file, unavailable provider, bad CPU list,
onnxruntime or numpy not importable; also a bug in the agent, with its traceback on
stderr). On every exit a JSON document (``record.py``) is printed on stdout (one line); on
failure ``status`` is ``"error"`` and ``error`` is one line. A crash of the interpreter
prints nothing; the host treats that as a failure of its own kind. ``--serve`` is agent
mode (``serve.py``).

Sources: asv_runner ``statistics.py`` (order-statistic CI of a quantile), pyperf and
androidx.benchmark (metadata before/after, warm-up until stable), onnxruntime's Python API
(``SessionOptions``, ``io_binding``, ``enable_profiling``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from typing import NoReturn, Sequence

from devices.agent.cpus import parse_cpu_list
from devices.agent.errors import (
    EXIT_MODEL,
    EXIT_OK,
    EXIT_USAGE,
    ModelError,
    UsageError,
    one_line,
)
from devices.agent.facts import collect_host_facts, current_affinity, model_facts, peak_rss
from devices.agent.loop import measure, reference_ms, warm_up
from devices.agent.record import Document, finite, new_document, to_ms
from devices.agent.serve import serve
from devices.agent.session import (
    OPT_LEVELS,
    bind,
    create_session,
    make_inputs,
    profile_nodes,
    rebind_outputs,
)
from devices.agent.stats import quantile_ci

DEFAULT_TARGET_CI = 0.01
DEFAULT_MIN_SAMPLES = 10
DEFAULT_MAX_SAMPLES = 100000
DEFAULT_MIN_TIME_S = 0.5
DEFAULT_MAX_TIME_S = 10.0
DEFAULT_WARMUP_MAX = 10000
DEFAULT_WARMUP_MAX_TIME_S = 2.0
DEFAULT_PROFILE_RUNS = 20
DEFAULT_SEED = 0

HELP_EPILOG = """\
measurement defaults: warm-up until two consecutive windows (>= 5 iterations and >= 0.1 s
each) have medians within 2 %, at most --warmup-max iterations / --warmup-max-time s; then
at least --min-samples samples and --min-time s, stopping when the 95 % CI of the median
has relative half-width <= --target-ci, or at --max-time s / --max-samples (hard caps).
--fixed N replaces the adaptive rule by exactly N timed iterations (warm-up still runs;
--warmup-max 0 skips it).

output: one JSON document (schema mnbench.runner/1) on stdout, one line per model.
exit codes: 0 ok, 1 model rejected or inference failed, 2 usage or setup error.

examples:
  python3 agent.pyz mobilenet_v1_1.0_224.onnx --threads 4 --cpus 4-7
  python3 agent.pyz model.onnx --fixed 100 --warmup-max 10 --no-spin
  python3 agent.pyz model.onnx --shape input=8x3x160x160 --profile
  python3 agent.pyz a.onnx b.onnx c.onnx --max-time 1   # a batch: one process, one line each
"""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


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
        prog="agent.pyz",
        description="Time ONNX models with onnxruntime and print one JSON document each.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="+",
        help="path to the .onnx file; several are a batch, one document each (not --serve)",
    )
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
        help="agent mode: load the model, then serve JSON commands on stdin (see "
        "devices/agent/serve.py)",
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


def _run(args: argparse.Namespace, doc: Document) -> None:
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
    doc["reference_ms"] = reference_ms()
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
    doc["timings"]["session_create_ms"] = to_ms(t1 - t0)
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
        doc["timings"]["first_inference_ms"] = to_ms(t1 - t0)
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
    doc["samples_ms"] = [to_ms(ns) for ns in samples_ns]
    doc["iterations"] = len(samples_ns)
    doc["stop_reason"] = reason
    _median, low, high = quantile_ci(samples_ns)
    if low is not None and high is not None:
        doc["median_ci_ms"] = [to_ms(low), to_ms(high)]

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
    """Run the agent on ``argv`` (without the program name), print the document(s), exit
    code (of a batch: the worst of its models')."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # The harness puts MODEL first; used only if the flags cannot be parsed.
    model_path = argv[0] if argv and not argv[0].startswith("-") else ""
    try:
        args = parser.parse_args(argv)
        if args.serve and len(args.model) > 1:
            raise UsageError("--serve takes one model")
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    except UsageError as error:
        doc = new_document(model_path)
        doc["error"] = one_line(error)
        _finish(doc, os.times())
        return EXIT_USAGE
    paths = list(args.model)
    code = EXIT_OK
    for index, path in enumerate(paths):
        code = max(code, _measure_one(args, path, index, len(paths)))
    return code


def _measure_one(args: argparse.Namespace, path: str, index: int, size: int) -> int:
    """Measure one model of the command line and print its document; its exit code."""
    doc = new_document(path)
    if size > 1:
        doc["batch"] = {"index": index, "size": size}
    start_cpu = os.times()
    code = EXIT_OK
    try:
        args.model = path
        _run(args, doc)
        if doc.get("agent"):
            return EXIT_OK  # agent mode: its document was the ready line
        doc["status"] = "ok"
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
    if index > 0:  # the process's peak so far, not this model's
        doc["memory"]["peak_rss_after_load_bytes"] = None
        doc["memory"]["peak_rss_end_bytes"] = None
    _finish(doc, start_cpu)
    return code


def _finish(doc: Document, start_cpu: os.times_result) -> None:
    """Complete the host facts and the CPU time, and print the document as one line."""
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
        text = json.dumps(finite(doc), separators=(",", ":"), allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
