"""``mnbench layers`` for 1.0/224 with D_K = 3 on this machine, timed, with per-layer CIs.

Targets (issue "Per-layer analysis"): under 2 minutes of wall time for the 52 probes, and the
95 % CI half-width of every probe's median within 2 % of the median. Prints the table
(predicted 1/N + 1/D_K² vs measured) and each probe's CI half-width.
Usage: python benchmarks/layers.py [extra mnbench layers flags, e.g. --trials 2]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness.cli import main as mnbench
from mobilenet.layers import ROLES, layer_table
from results.store import Store


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db, models = Path(tmp) / "db.sqlite", Path(tmp) / "models"
        base = ["--db", str(db), "--models-dir", str(models), "--alpha", "1.0"]
        start = time.perf_counter()
        flags = ["--resolution", "224", "--kernel", "3", "--trials", "1", "--quiet"]
        rc = mnbench(["layers", *base, *flags, *argv])
        wall_s = time.perf_counter() - start
        if rc != 0:
            raise SystemExit(f"mnbench layers exited {rc}")
        with Store.open(db) as store:
            table = layer_table(store.probes_frame([1]))
            limits = store.get_run(1).device_facts.get("limits", {})
    widths = [
        (int(r["block"]), role, float(r[f"{role}_ci_rel"]))
        for _, r in table.iterrows()
        for role in ROLES
    ]
    tight = sum(1 for _, _, w in widths if w <= 0.02)
    print()
    for block, role, width in widths:
        print(f"block {block:2d} {role:9s} CI half-width {100 * width:5.2f} %")
    print(f"wall time (generation + limits + 52 probes): {wall_s:.1f} s (target < 120 s)")
    print(f"probes with CI half-width <= 2 %: {tight}/{len(widths)} (target all)")
    print(
        f"limits: {limits.get('peak_gflop_s', float('nan')):.1f} GFLOP/s GEMM, "
        f"{limits.get('bandwidth_gb_s', float('nan')):.1f} GB/s copy"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
