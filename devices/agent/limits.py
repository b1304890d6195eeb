"""Device-side microbenchmark of the machine's limits: peak compute and memory bandwidth.

Pushed like the agent, as its own zipapp (``python3 limits.pyz [--threads N] [--cpus LIST]``,
``bundle.py``); needs the standard library and numpy only and runs on Python 3.8. Prints one
JSON document on stdout.

- **compute**: a square fp32 matrix product through numpy (its BLAS), 2·n³ FLOPs, best of a
  few repetitions, in GFLOP/s. This is a practical ceiling (what a tuned GEMM reaches on
  these cores), not the datasheet peak.
- **memory bandwidth**: a copy of an array far larger than the caches (``np.copyto``), best
  of a few repetitions, counting the bytes read plus the bytes written, in GB/s (10⁹ B/s).

Together they are the two ceilings of the roofline model (Williams, Waterman and Patterson
2009, "Roofline: an insightful visual performance model for multicore architectures",
CACM 52(4)): attainable FLOP/s = min(peak, bandwidth × arithmetic intensity).

The thread count is set for the BLAS before numpy is imported (OpenBLAS, OpenMP, MKL
variables) and the process is pinned with ``--cpus`` first, like the agent, so the
ceilings are those of the cores and threads the models run on. The whole run takes about
``--budget`` seconds (default 2).

Document (``SCHEMA = "mnbench.limits/1"``)::

    {"schema": "mnbench.limits/1", "status": "ok" | "error", "error": null | str,
     "peak_gflop_s": float | null, "bandwidth_gb_s": float | null,
     "gemm": {"n": int, "reps": int, "best_s": float} | null,
     "copy": {"bytes": int, "reps": int, "best_s": float} | null,
     "threads": int | null, "cpus": [int] | null, "numpy": str | null, "python": str}

Exit codes: 0 ok, 2 usage or setup error (a document is printed either way).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from devices.agent.cpus import parse_cpu_list

SCHEMA = "mnbench.limits/1"
DEFAULT_BUDGET_S = 2.0
GEMM_SIZES = (512, 1024)
MAX_REPS = 200
COPY_BYTES = 128 * 1024 * 1024
MIN_REPS = 3
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def best_time(run: Any, max_reps: int, deadline: float) -> tuple[float, int]:
    """Best wall time of ``run()``: called until the deadline, at least once and at most
    ``max_reps`` times."""
    best = float("inf")
    done = 0
    while done < max_reps:
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        done += 1
        if time.perf_counter() + elapsed > deadline:
            break
    return best, done


def measure_gemm(np: Any, budget_s: float) -> dict[str, Any]:
    """n = 1024 (n = 512 where one such product would not fit the budget a few times over),
    repeated until the budget is spent; the best repetition counts."""
    deadline = time.perf_counter() + budget_s
    rng = np.random.default_rng(0)
    n = GEMM_SIZES[0]
    a = rng.standard_normal((n, n)).astype(np.float32)
    out = np.empty((n, n), dtype=np.float32)
    start = time.perf_counter()
    np.matmul(a, a, out=out)  # warm-up: threads started, pages touched
    small_s = time.perf_counter() - start
    if small_s * 8 * (MIN_REPS + 1) < deadline - time.perf_counter():
        n = GEMM_SIZES[1]
        a = rng.standard_normal((n, n)).astype(np.float32)
        out = np.empty((n, n), dtype=np.float32)
        np.matmul(a, a, out=out)
    b = a.copy()
    best, reps = best_time(partial(np.matmul, a, b, out=out), MAX_REPS, deadline)
    return {"n": n, "reps": reps, "best_s": best, "gflop_s": 2.0 * n**3 / best / 1e9}


def measure_copy(np: Any, budget_s: float) -> dict[str, Any]:
    deadline = time.perf_counter() + budget_s
    count = COPY_BYTES // 4
    source = np.ones(count, dtype=np.float32)
    target = np.zeros(count, dtype=np.float32)
    np.copyto(target, source)  # touch every page once
    best, reps = best_time(partial(np.copyto, target, source), MAX_REPS, deadline)
    return {
        "bytes": int(source.nbytes),
        "reps": reps,
        "best_s": best,
        "gb_s": 2.0 * source.nbytes / best / 1e9,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="limits.pyz", description="Measure peak GEMM GFLOP/s and copy bandwidth (JSON)."
    )
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads; 0 = default")
    parser.add_argument("--cpus", default=None, help="pin to these CPUs, e.g. 0,1 or 4-7")
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds in all (default 2)"
    )
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "status": "error",
        "error": None,
        "peak_gflop_s": None,
        "bandwidth_gb_s": None,
        "gemm": None,
        "copy": None,
        "threads": None,
        "cpus": None,
        "numpy": None,
        "python": platform.python_version(),
    }
    code = 0
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.threads < 0 or not 0 < args.budget <= 60:
            raise ValueError("--threads must be >= 0 and --budget between 0 and 60 s")
        if args.cpus is not None:
            cpus = parse_cpu_list(args.cpus)
            os.sched_setaffinity(0, cpus)
            doc["cpus"] = cpus
            if args.threads == 0:
                args.threads = len(cpus)
        if args.threads > 0:
            for name in THREAD_VARIABLES:
                os.environ[name] = str(args.threads)
            doc["threads"] = args.threads
        import numpy as np

        doc["numpy"] = np.__version__
        gemm = measure_gemm(np, args.budget * 0.6)
        copy = measure_copy(np, args.budget * 0.4)
        doc.update(
            status="ok",
            gemm=gemm,
            copy=copy,
            peak_gflop_s=gemm["gflop_s"],
            bandwidth_gb_s=copy["gb_s"],
        )
    except SystemExit as request:  # --help or a bad flag (argparse printed why)
        if request.code in (0, None):
            return 0
        doc["error"] = "bad arguments (see limits.pyz --help)"
        code = 2
    except (ValueError, OSError, ImportError, MemoryError) as error:
        doc["error"] = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        code = 2
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
