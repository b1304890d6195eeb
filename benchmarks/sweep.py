"""The default sweep of the 16-cell grid on this machine, timed, with its CI half-widths.

Target (issue "Measure on this machine's CPU"): under 150 s on a 2-core machine, with the
95 % CI half-width of the median within 1 % for at least 14 of 16 cells.
Usage: python benchmarks/sweep.py [--trials K] [extra mnbench run flags]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness.cli import main as mnbench
from results.store import Store


def sweep(db: Path, models: Path, extra: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    rc = mnbench(["run", "--db", str(db), "--models-dir", str(models), "--quiet", *extra])
    if rc != 0:
        raise SystemExit(f"mnbench run exited {rc}")
    return time.perf_counter() - start, rc


def half_widths(db: Path, run_id: int) -> list[tuple[str, float, float]]:
    with Store.open(db) as store:
        frame = store.results_frame([run_id])
    return [
        (r.name, r.p50_ms, (r.ci_high_ms - r.ci_low_ms) / 2 / r.p50_ms) for r in frame.itertuples()
    ]


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db, models = Path(tmp) / "db.sqlite", Path(tmp) / "models"
        mnbench(["generate", "--out", str(models)])  # generation is not part of the sweep
        wall_s, _ = sweep(db, models, argv)
        rows = half_widths(db, 1)
    tight = sum(1 for _, _, h in rows if h <= 0.01)
    for name, p50, h in rows:
        print(f"{name:28s} p50 {p50:9.3f} ms  CI half-width {100 * h:5.2f} %")
    print(f"default sweep wall time: {wall_s:.1f} s (target < 150 s)")
    print(f"cells with CI half-width <= 1 %: {tight}/{len(rows)} (target >= 14/16)")


if __name__ == "__main__":
    main(sys.argv[1:])
