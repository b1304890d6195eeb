"""Benchmark: time ``build_report`` on a store holding 4 runs × 16 cells (target < 10 s).

The store is filled through the real ``results.store.Store`` API with synthetic runner
documents (2 trials × 30 samples per cell), then the report for ``--run all`` is built into a
temporary directory. Prints the wall time of the store fill and of each report build.

    python benchmarks/report.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package helpers

from reports.build import build_report
from tests.reports.storedata import make_store

TARGET_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="report builds to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        db = Path(temp) / "bench.sqlite"
        start = time.perf_counter()
        make_store(db, runs=4)
        fill_s = time.perf_counter() - start
        print(f"store fill: 4 runs x 16 cells x 2 trials in {fill_s:.2f} s")
        timings_s: list[float] = []
        for index in range(args.repeat):
            start = time.perf_counter()
            files = build_report(db, ["all"], None, Path(temp) / f"report{index}")
            timings_s.append(time.perf_counter() - start)
            print(
                f"build_report #{index + 1}: {timings_s[-1]:.2f} s "
                f"({len(files.images)} images, {files.html.stat().st_size / 1e6:.2f} MB html)"
            )
        best = min(timings_s)
        verdict = "within" if best < TARGET_S else "OVER"
        print(f"best build_report: {best:.2f} s ({verdict} the {TARGET_S:.0f} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
