"""A/A stability: two default sweeps back to back, the per-cell median ratio.

Target (issue "Measure on this machine's CPU"): the ratio within ±3 % for at least 14 of 16
cells.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.cli import main as mnbench
from results.store import Store


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db, models = Path(tmp) / "db.sqlite", Path(tmp) / "models"
        mnbench(["generate", "--out", str(models)])
        for label in ("A1", "A2"):
            rc = mnbench(
                [
                    "run",
                    "--db",
                    str(db),
                    "--models-dir",
                    str(models),
                    "--quiet",
                    "--label",
                    label,
                    *argv,
                ]
            )
            if rc != 0:
                raise SystemExit(f"mnbench run exited {rc}")
        with Store.open(db) as store:
            first = store.results_frame([1]).set_index("name")["p50_ms"]
            second = store.results_frame([2]).set_index("name")["p50_ms"]
    ratio = (second / first).sort_index()
    within = int(((ratio - 1).abs() <= 0.03).sum())
    for name, value in ratio.items():
        print(f"{name:28s} A2/A1 median ratio {value:.4f}")
    print(f"cells within ±3 %: {within}/{len(ratio)} (target >= 14/16)")


if __name__ == "__main__":
    main(sys.argv[1:])
