"""Wall time of `mnbench regress` on the 16-cell grid with 6 trials per side, and its A/A
false-alarm rate (the same runtime on both sides: every slower/faster verdict is false).

Target (issue "Regress-test runtime versions"): under 10 minutes on this machine.
Usage: python benchmarks/regress.py [--baseline SPEC --candidate SPEC] (default: A/A with the
harness's own onnxruntime)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from harness.cli import main as mnbench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="current")
    parser.add_argument("--candidate", default="current")
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            rc = mnbench(
                [
                    "regress",
                    "--baseline",
                    args.baseline,
                    "--candidate",
                    args.candidate,
                    "--trials",
                    str(args.trials),
                    "--db",
                    str(Path(tmp) / "db.sqlite"),
                    "--models-dir",
                    str(Path(tmp) / "m"),
                    "--format",
                    "json",
                    "--quiet",
                    "--seed",
                    "0",
                ]
            )
        wall_s = time.perf_counter() - start
    doc = json.loads(out.getvalue())
    counts = doc["counts"]
    cells = len(doc["cells"])
    for cell in doc["cells"]:
        print(
            f"{cell['name']:26s} ratio {cell['ratio']:.3f} "
            f"[{cell['ci_low']:.3f}, {cell['ci_high']:.3f}] p_BH {cell['p_adjusted']:.3g} "
            f"{cell['verdict']}"
        )
    print(
        f"regress {args.baseline} vs {args.candidate}: {cells} cells x {args.trials} trials "
        f"per side in {wall_s:.0f} s (target < 600 s), exit code {rc}"
    )
    print(f"verdicts: {counts}; geometric mean ratio {doc['geometric_mean_ratio']:.4f}")
    if args.baseline == args.candidate:
        alarms = counts["slower"] + counts["faster"]
        print(f"A/A false-alarm rate: {alarms}/{cells} cells = {alarms / max(cells, 1):.1%}")


if __name__ == "__main__":
    main()
