"""What the idle side of a process pair should do between its bursts: measured.

Two runner agents of the same model (A/A, 2 threads, spinning as configured) alternate
bursts of ~75 ms. Three ways to keep the idle one out of the way:

- suspend: SIGSTOP/SIGCONT of its process group (harness/measure/paired.py's choice);
- no-spin: both sessions created with session.intra_op.allow_spinning=0, never suspended
  (the idle side then blocks instead of spinning -- but so does the side measured, whose
  configured session options are no longer the ones measured);
- nothing: spinning on, never suspended.

Printed per mode: burst medians (ms), the sd of the per-burst-pair log ratio (the noise a
pair must average away), and a solo reference (one process, no partner). Asserts nothing.
Usage: flock /tmp/mnbench-heavy.lock python benchmarks/regress_idle.py [--pairs 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

from devices.agent.bundle import AGENT, zipapp_path
from devices.local import LocalTransport
from harness.cli import main as mnbench
from harness.measure.paired import PairSettings, SideCommand, measure_pair
from results.paired import Burst, burst_log_ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--alpha", default="0.5")
    parser.add_argument("--resolution", default="160")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            mnbench(["generate", "--alpha", args.alpha, "--resolution", args.resolution,
                     "--out", tmp])  # fmt: skip
        (model,) = Path(tmp).glob("*.onnx")
        base = (sys.executable, str(zipapp_path(AGENT)), str(model), "--threads", "2")
        modes = {
            "suspend": (base, True),
            "no-spin": ((*base, "--no-spin"), False),
            "nothing": (base, False),
        }
        transport = LocalTransport(tmp)
        rng = random.Random(0)
        rows: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in modes}
        for pair in range(args.pairs):
            for mode in rng.sample(list(modes), len(modes)):  # modes interleaved per round
                argv, suspend = modes[mode]
                settings = PairSettings(suspend_idle=suspend)
                result = measure_pair(
                    transport, {"A": SideCommand(argv), "B": SideCommand(argv)}, rng, settings
                )
                bursts = [Burst(pair, b.position, b.side, 0.0, b.samples_ms) for b in result.bursts]
                rows[mode][0].extend(b.value_ms for b in bursts)
                rows[mode][1].extend(burst_log_ratios(bursts))
        solo = [float(v) for v in _solo(transport, base)]
    print(f"solo process (no partner): median of burst medians {statistics.median(solo):.3f} ms")
    for mode, (values, ratios) in rows.items():
        print(
            f"{mode:8}: burst medians {statistics.median(values):.3f} ms "
            f"(range {min(values):.2f}-{max(values):.2f}), per-burst-pair log-ratio sd "
            f"{statistics.stdev(ratios):.3f}, A/A geometric-mean ratio "
            f"{math.exp(statistics.mean(ratios)):.3f} over {len(ratios)} burst pairs"
        )
    print(f"load average at end: {os.getloadavg()}")


def _solo(transport: LocalTransport, argv: tuple[str, ...]) -> list[float]:
    import json

    process = transport.start_interactive([*argv, "--serve"])
    try:
        process.read_line(120)
        process.exchange('{"cmd": "warmup"}', 120)
        medians = []
        for _ in range(16):
            reply = json.loads(process.exchange('{"cmd": "burst", "n": 50}', 120))
            medians.append(statistics.median(reply["samples_ms"]))
        return medians
    finally:
        process.close()


if __name__ == "__main__":
    main()
