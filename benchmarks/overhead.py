"""Overhead of the device-side runner against a bare IO-binding loop.

For MobileNetV1 1.0/224 and 0.25/128 (Howard et al. 2017, arXiv:1704.04861; built by
``mobilenet.generator``) this script alternates, round by round, between

  (a) the agent (devices/agent, as the agent.pyz zipapp) started as a subprocess exactly as
      the harness starts it -- ``python agent.pyz MODEL --threads N`` with its default
      measurement rule -- and the median of the samples it reports, and
  (b) a bare in-process loop over the same model with the same session options
      (N intra-op threads, default inter-op threads, all graph optimizations, sequential,
      spinning on), inputs and outputs bound once through IO binding, timed with
      ``time.perf_counter_ns`` around ``run_with_iobinding``,

and prints the ratio runner/bare per round and overall (median of the per-round ratios).
The order of (a) and (b) flips every round (A B B A ...) so drift is not blamed on one side.
Targets: <= 1.02 for 1.0/224 and <= 1.05 for 0.25/128. Run it on a quiet machine; a
benchmark prints figures, it asserts nothing.

    python benchmarks/overhead.py [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from devices.agent.bundle import AGENT, zipapp_path
from devices.agent.facts import cpu_model
from mobilenet.generator import build_model
from mobilenet.spec import ModelSpec

RUNNER_PATH = zipapp_path(AGENT)
BARE_WARMUP_S = 1.0
BARE_MEASURE_S = 1.0


@dataclass(frozen=True)
class Case:
    spec: ModelSpec
    target_ratio: float

    @property
    def label(self) -> str:
        return f"{self.spec.alpha:g}/{self.spec.resolution}"


CASES = (
    Case(ModelSpec(alpha=1.0, resolution=224), 1.02),
    Case(ModelSpec(alpha=0.25, resolution=128), 1.05),
)


@dataclass(frozen=True)
class RunnerResult:
    median_ms: float
    iterations: int
    measure_s: float
    stop_reason: str


def run_runner(model: Path, threads: int, timeout_s: float) -> RunnerResult:
    """Start the runner as the harness does and read the median of its samples."""
    argv = [sys.executable, str(RUNNER_PATH), str(model), "--threads", str(threads)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    doc: dict[str, Any] = json.loads(completed.stdout)
    if completed.returncode != 0 or doc["status"] != "ok":
        raise RuntimeError(f"runner failed ({completed.returncode}): {doc['error']}")
    return RunnerResult(
        median_ms=statistics.median(doc["samples_ms"]),
        iterations=int(doc["iterations"]),
        measure_s=float(doc["timings"]["measure_s"]),
        stop_reason=str(doc["stop_reason"]),
    )


def bare_session(model: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 0
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_bare(model: Path, threads: int) -> float:
    """Median latency in ms of a minimal IO-binding loop, in this process."""
    session = bare_session(model, threads)
    rng = np.random.default_rng(0)
    binding = session.io_binding()
    keep = []
    for node in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in node.shape]
        value = ort.OrtValue.ortvalue_from_numpy(rng.standard_normal(shape).astype(np.float32))
        keep.append(value)
        binding.bind_ortvalue_input(node.name, value)
    for node in session.get_outputs():
        binding.bind_output(node.name, "cpu")
    run = session.run_with_iobinding
    run(binding)
    for node, value in zip(session.get_outputs(), binding.get_outputs(), strict=True):
        binding.bind_ortvalue_output(node.name, value)
    clock = time.perf_counter_ns
    deadline = clock() + int(BARE_WARMUP_S * 1e9)
    while clock() < deadline:
        run(binding)
    samples: list[int] = []
    append = samples.append
    deadline = clock() + int(BARE_MEASURE_S * 1e9)
    while True:
        t0 = clock()
        run(binding)
        t1 = clock()
        append(t1 - t0)
        if t1 >= deadline:
            break
    del session, binding, keep
    gc.collect()
    return statistics.median(samples) / 1e6


def measure_case(case: Case, model: Path, rounds: int, threads: int) -> list[float]:
    ratios = []
    print(f"\nMobileNetV1 {case.label}  ({model.stat().st_size / 1e6:.1f} MB, {threads} threads)")
    print("round  order        runner_ms  bare_ms   ratio  runner_iterations  stop_reason")
    for index in range(rounds):
        runner_first = index % 2 == 0
        if runner_first:
            result = run_runner(model, threads, timeout_s=120.0)
            bare_ms = run_bare(model, threads)
        else:
            bare_ms = run_bare(model, threads)
            result = run_runner(model, threads, timeout_s=120.0)
        ratio = result.median_ms / bare_ms
        ratios.append(ratio)
        order = "runner,bare" if runner_first else "bare,runner"
        print(
            f"{index + 1:>5}  {order:<11}  {result.median_ms:>9.4f}  {bare_ms:>7.4f}  "
            f"{ratio:>6.3f}  {result.iterations:>17}  {result.stop_reason}"
        )
    overall = statistics.median(ratios)
    verdict = "meets" if overall <= case.target_ratio else "MISSES"
    print(
        f"ratio runner/bare for {case.label}: median {overall:.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}) -- {verdict} target "
        f"<= {case.target_ratio:.2f}"
    )
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        help="intra-op threads for both sides (default: the CPUs this process may use)",
    )
    args = parser.parse_args(argv)
    print(f"onnxruntime {ort.__version__}, python {sys.version.split()[0]}, {cpu_model()}")
    summary = []
    with tempfile.TemporaryDirectory(prefix="mnbench_overhead_") as workdir:
        for case in CASES:
            model = Path(workdir) / f"mobilenet_v1_{case.spec.alpha:g}_{case.spec.resolution}.onnx"
            onnx.save(build_model(case.spec), str(model))
            ratios = measure_case(case, model, args.rounds, args.threads)
            summary.append((case, statistics.median(ratios)))
    print("\nsummary")
    for case, ratio in summary:
        print(f"  {case.label:>8}: runner/bare {ratio:.3f} (target <= {case.target_ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
