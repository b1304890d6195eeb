"""Power of `mnbench regress`: verdicts for A/A and injected slowdowns, the paired design
(process pairs, interleaved bursts, sequential stopping) and today's trials design side by
side in one run. Prints figures; asserts nothing.

Conditions (cells 0.5/160 and 1.0/160, each cell one `mnbench regress` so its wall time is
the cell's cost; the candidate is the harness's interpreter wrapped by harness/measure/slowdown.py,
busy work of the given fraction after every inference):

- A/A: target no slower/faster in reps x 2 cells, >= 80 % unchanged;
- injected 10 %: target slower (exit 1) in >= 9/10, median <= 60 s per cell;
- injected 5 % with --threshold 2: target slower in >= 8/10, median <= 120 s per cell;
- the smallest slowdown detected with 80 % power in a 60 s per-cell budget, estimated from
  the noise the A/A runs measured (pairs: sd of the pair summaries and pairs per 60 s;
  trials: sd of log per-trial medians and trials per 60 s), for both designs.

Each line names the rounds the device guards flagged (busy, throttled), as the verdict does.

Usage: flock /tmp/mnbench-heavy.lock python benchmarks/regress_power.py [--reps 10]
       [--conditions aa,10,5] [--designs pairs,trials] [--budget 60]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.cli import main as mnbench
from harness.measure.slowdown import make_slow_python
from results.paired import looks, spent_alpha
from results.store import Store

CELLS = (("0.5", "160"), ("1.0", "160"))
CONDITIONS = {"aa": (0.0, 5.0), "10": (0.10, 5.0), "5": (0.05, 2.0)}


def one_cell(
    tmp: Path, design: str, alpha: str, resolution: str, candidate: str, threshold: float,
    budget_s: float, seed: int, tag: str,
) -> dict[str, Any]:  # fmt: skip
    db = tmp / f"{tag}.sqlite"
    argv = [
        "regress", "--baseline", "current", "--candidate", candidate,
        "--alpha", alpha, "--resolution", resolution, "--design", design,
        "--threshold", str(threshold), "--db", str(db), "--models-dir", str(tmp / "models"),
        "--format", "json", "--quiet", "--seed", str(seed),
    ]  # fmt: skip
    if design == "pairs":
        argv += ["--budget", str(budget_s)]
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = mnbench(argv)
    wall_s = time.perf_counter() - start
    doc = json.loads(out.getvalue())
    (cell,) = doc["cells"]
    result = {"rc": rc, "wall_s": wall_s, **cell}
    if design == "trials":
        with Store.open(db) as store:
            frame = store.measurements_frame()
        logs = [math.log(v) for v in frame["p50_ms"] if v and v > 0]
        per_side = [
            [math.log(v) for v in frame[frame["run_id"] == r]["p50_ms"] if v and v > 0]
            for r in sorted(set(frame["run_id"]))
        ]
        result["trial_log_sd"] = math.sqrt(
            statistics.mean(statistics.variance(s) for s in per_side if len(s) > 1)
        )
        del logs
    db.unlink(missing_ok=True)
    return result


def detectable(design: str, aa: list[dict[str, Any]], threshold: float, budget_s: float) -> str:
    """Smallest slowdown caught with 80 % power in budget_s per cell, from A/A noise."""
    from scipy import stats

    if not aa:
        return "n/a"
    z80 = float(stats.norm.ppf(0.8))
    edge = math.log(1 + threshold / 100)
    if design == "pairs":
        sds, rates = [], []
        for r in aa:
            m = 16
            within, between = r["within_sd"] or 0.0, r["between_sd"] or 0.0
            sds.append(math.sqrt(between**2 + within**2 / m))
            rates.append(r["baseline_trials"] / r["wall_s"])
        sd, per_s = statistics.median(sds), statistics.median(rates)
        n = max(3, min(30, int(per_s * budget_s)))
        points = [p for p in looks(30) if p <= n] or [3]
        previous = points[-2] if len(points) > 1 else 0
        level = spent_alpha(points[-1] / 30) - spent_alpha(previous / 30)
        q = float(stats.t.ppf(1 - level / 2, max(n - 1, 1)))
        delta = edge + (q + z80) * sd / math.sqrt(n)
        how = f"{n} pairs in {budget_s:g} s, pair sd {sd:.3f}, look alpha {level:.4f}"
    else:
        sd = statistics.median(r["trial_log_sd"] for r in aa)
        per_s = statistics.median(2 * r["baseline_trials"] / r["wall_s"] for r in aa)
        n = max(2, int(per_s * budget_s / 2))
        delta = edge + (float(stats.norm.ppf(0.975)) + z80) * sd * math.sqrt(2 / n)
        how = f"{n} trials per side in {budget_s:g} s, trial sd {sd:.3f}"
    return f"{100 * (math.exp(delta) - 1):.1f} % ({how})"


def summarise(
    results: dict[tuple[str, str], list[dict[str, Any]]], designs: list[str], budget_s: float
) -> None:
    print(f"{'condition':14} {'design':7} {'slower':>7} {'faster':>7} {'unchanged':>9} "
          f"{'inconcl.':>8} {'exit1':>6} {'median s/cell':>13}")  # fmt: skip
    for (condition, design), rows in results.items():
        count = {v: sum(r["verdict"] == v for r in rows) for v in
                 ("slower", "faster", "unchanged", "inconclusive")}  # fmt: skip
        exit1 = sum(r["rc"] == 1 for r in rows)
        label = {"aa": "A/A", "10": "10 % (thr 5)", "5": "5 % (thr 2)"}[condition]
        print(
            f"{label:14} {design:7} {count['slower']:>4}/{len(rows):<2} {count['faster']:>4}/"
            f"{len(rows):<2} {count['unchanged']:>6}/{len(rows):<2} {count['inconclusive']:>5}/"
            f"{len(rows):<2} {exit1:>3}/{len(rows):<2} "
            f"{statistics.median(r['wall_s'] for r in rows):>13.0f}"
        )
    for design in designs:
        aa = results.get(("aa", design), [])
        print(
            f"smallest slowdown with 80 % power in {budget_s:g} s/cell, {design}: "
            f"{detectable(design, aa, 5.0, budget_s)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--conditions", default="aa,10,5")
    parser.add_argument("--designs", default="pairs,trials")
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    conditions = args.conditions.split(",")
    designs = args.designs.split(",")
    print(f"load average at start: {os.getloadavg()}")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with contextlib.redirect_stdout(io.StringIO()):
            mnbench(["generate", "--alpha", "0.5", "1.0", "--resolution", "160",
                     "--out", str(tmp / "models")])  # fmt: skip
        for rep in range(args.reps):
            for condition in conditions:
                fraction, threshold = CONDITIONS[condition]
                candidate = "current" if fraction == 0 else str(make_slow_python(tmp, fraction))
                for design in designs:  # same repetition, same minute: side by side
                    for alpha, resolution in CELLS:
                        r = one_cell(
                            tmp, design, alpha, resolution, candidate, threshold,
                            args.budget, 1000 * rep + len(results), f"{condition}-{design}",
                        )  # fmt: skip
                        results.setdefault((condition, design), []).append(r)
                        print(
                            f"rep {rep} {condition:>3} {design:6} {r['name']:22} "
                            f"{r['verdict']:12} ratio {r['ratio']:.3f} "
                            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] n {r['baseline_trials']:2} "
                            f"{r['wall_s']:5.0f} s exit {r['rc']}  load {os.getloadavg()[0]:.1f}"
                            + (
                                f"  ({r['note']})"
                                if "busy" in str(r.get("note")) or "throttled" in str(r.get("note"))
                                else ""
                            ),
                            flush=True,
                        )
            print(f"-- after repetition {rep + 1}:")
            summarise(results, designs, args.budget)
    print(f"\nload average at end: {os.getloadavg()}; total {time.perf_counter() - started:.0f} s")
    summarise(results, designs, args.budget)


if __name__ == "__main__":
    main()
