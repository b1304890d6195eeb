"""What pushing the agent as a zipapp costs at start-up: the same agent started from
``agent.pyz`` and from the source tree (``python -m devices.agent``), alternating (ABAB...)
in one run, and optionally a third program given with ``--also FILE`` (for instance an
earlier single-file runner) in the same rounds.

Two paths are timed per start, medians over ``--rounds`` starts each:
- ``error``: a missing model file, so the process parses its flags, records the host facts
  twice and prints its document without importing numpy or onnxruntime (the agent's own
  start-up cost);
- ``measure``: the smallest grid model (α 0.25, 96 px) with ``--fixed 20 --warmup-max 0``
  (onnxruntime's import and session dominate, as in every real measurement).

Usage: ``python benchmarks/agent_startup.py [--rounds N] [--also PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devices.agent.bundle import AGENT, zipapp_path
from mobilenet.generator import generate
from mobilenet.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--also", type=Path, default=None, help="another runner file to time")
    args = parser.parse_args()
    programs = {
        "agent.pyz": [sys.executable, str(zipapp_path(AGENT))],
        "python -m devices.agent": [sys.executable, "-m", "devices.agent"],
    }
    if args.also is not None:
        programs[args.also.name] = [sys.executable, str(args.also)]
    with tempfile.TemporaryDirectory() as tmp:
        model = generate(ModelSpec(alpha=0.25, resolution=96), Path(tmp)).path
        paths = {
            "error": [str(Path(tmp) / "absent.onnx")],
            "measure": [str(model), "--fixed", "20", "--warmup-max", "0"],
        }
        for path, extra in paths.items():
            times: dict[str, list[float]] = {name: [] for name in programs}
            for _ in range(args.rounds):
                for name, argv in programs.items():
                    times[name].append(_time([*argv, *extra]))
            base = statistics.median(times["python -m devices.agent"])
            for name, values in times.items():
                median = statistics.median(values)
                print(
                    f"{path:8s} {name:24s} median {median:7.1f} ms over {len(values)} starts, "
                    f"ratio to the source tree {median / base:.3f}"
                )


if __name__ == "__main__":
    main()
