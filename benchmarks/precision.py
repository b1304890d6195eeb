"""int8 against fp32 latency on this machine: MobileNetV1 1.0/224 and 0.25/128.

For each cell (Howard et al. 2017, arXiv:1704.04861; built by ``mobilenet.generator``, the int8
model by ``mobilenet.precision``: static QDQ, per-channel weights) this script alternates the
two precisions round by round (A B B A ...), each measurement a fresh runner process started
exactly as ``mnbench run`` starts it (``python agent.pyz MODEL --threads N``, its default
measurement rule), and prints each precision's median latency (median of the per-round
medians) and the int8/fp32 ratio (median of the per-round ratios).

It also prints what onnxruntime makes of the int8 graph — the op types of the optimised model
(whether the QDQ pairs were fused into QLinearConv / QGemm, or DequantizeLinear runs before a
float Conv) — and the CPU's integer dot-product features from /proc/cpuinfo, because an int8
model is only faster where the runtime has integer kernels for it and the CPU a fast path.
Run it on a quiet machine; a benchmark prints figures, it asserts nothing.

    python benchmarks/precision.py [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from devices.agent.bundle import AGENT, zipapp_path
from mobilenet.generator import GeneratedModel, generate
from mobilenet.spec import ModelSpec, Precision

RUNNER_PATH = zipapp_path(AGENT)
CELLS = ((1.0, 224), (0.25, 128))
PRECISIONS: tuple[Precision, Precision] = ("fp32", "int8")
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_fp16", "asimddp")


def run_runner(model: Path, threads: int, timeout_s: float = 300.0) -> float:
    """The median latency (ms) the runner reports for one fresh process."""
    argv = [sys.executable, str(RUNNER_PATH), str(model), "--threads", str(threads)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    doc: dict[str, Any] = json.loads(completed.stdout)
    if completed.returncode != 0 or doc["status"] != "ok":
        raise RuntimeError(f"runner failed ({completed.returncode}): {doc.get('error')}")
    return float(statistics.median(doc["samples_ms"]))


def optimised_ops(model: Path, threads: int, workdir: Path) -> dict[str, int]:
    """Op types of the graph onnxruntime actually runs (all optimisations, CPU provider)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    target = workdir / f"{model.stem}.optimised.onnx"
    options.optimized_model_filepath = str(target)
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]
    ops = collections.Counter(n.op_type for n in onnx.load(str(target)).graph.node)
    return dict(ops.most_common())


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            return [f for f in ISA_FLAGS if f in present]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, {args.rounds} rounds")
    print(f"CPU features: {', '.join(cpu_flags()) or 'none of ' + ', '.join(ISA_FLAGS)}")
    with tempfile.TemporaryDirectory(prefix="mnbench-precision-") as tmp:
        workdir = Path(tmp)
        rows = []
        for alpha, resolution in CELLS:
            models: dict[str, GeneratedModel] = {
                p: generate(ModelSpec(alpha=alpha, resolution=resolution, precision=p), workdir)
                for p in PRECISIONS
            }
            int8 = models["int8"]
            print(f"\n{alpha:g}/{resolution}: int8 fidelity {int8.fidelity}")
            print(f"  optimised int8 graph: {optimised_ops(int8.path, args.threads, workdir)}")
            medians: dict[str, list[float]] = {p: [] for p in PRECISIONS}
            ratios = []
            for round_index in range(args.rounds):
                order = PRECISIONS if round_index % 2 == 0 else PRECISIONS[::-1]
                got = {p: run_runner(models[p].path, args.threads) for p in order}
                for p in PRECISIONS:
                    medians[p].append(got[p])
                ratios.append(got["int8"] / got["fp32"])
                print(
                    f"  round {round_index + 1}: fp32 {got['fp32']:.3f} ms, "
                    f"int8 {got['int8']:.3f} ms, int8/fp32 {ratios[-1]:.3f}"
                )
            rows.append(
                (
                    f"{alpha}/{resolution}",
                    statistics.median(medians["fp32"]),
                    statistics.median(medians["int8"]),
                    statistics.median(ratios),
                    min(ratios),
                    max(ratios),
                )
            )
    print("\ncell       fp32 (ms)  int8 (ms)  int8/fp32  (range over rounds)")
    for label, fp32, int8_ms, ratio, low, high in rows:
        print(f"{label:<9} {fp32:>10.3f} {int8_ms:>10.3f} {ratio:>10.3f}  ({low:.3f}-{high:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
