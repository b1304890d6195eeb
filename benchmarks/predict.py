"""``mnbench predict`` on this machine: fit from at most 5 minutes of measuring, then predict
the 16-cell grid and 17 off-grid variants never measured for the fit, against truth measured
with fresh-process trials interleaved across all the held-out models.

Targets (issue "Predict latency on a device before measuring it"): the fit's measuring within
5 minutes; at least 90 % of predictions within ±10 % of the measured median, the truth's own
95 % interval (across trials) within ±3 % (trials are added, interleaved, to the models whose
interval is wider, up to ``MAX_TRIALS``). Prints the same shares for two naive baselines side
by side: latency ∝ MACs from one measured model (the fit's 0.625/200), and a per-layer-type
lookup table (the median ms per MAC of the fit's probes of each kind). Asserts nothing.

The method (probes, training whole models, in-context factor) is fixed before the truth is
measured; nothing of the truth enters the fit.

``--board`` does the same on the emulated aarch64 board (Debian's Python and onnxruntime's
aarch64 wheel under qemu-user, the cached sysroot of tests/fixtures/build_arm64_sysroot.py,
built on first use), named ``board`` in a temporary inventory.

Usage: python benchmarks/predict.py [--board] [--threads N] [--budget-s S] [--probes P]
       [--trials K] [--max-trials K] [--keep DB]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.cli import main as mnbench
from harness.commands.options import resolve
from harness.measure.plan import PlanItem, RunnerSettings
from harness.measure.sweep import prepare_models, run_plan
from harness.predict.estimator import FittedModel
from harness.predict.prediction import predict_variant
from harness.predict.training import Target, open_session
from harness.predict.validation import HELD_OUT, relative_error, truths_from_run, within_shares
from mobilenet.architecture import scaled_layers
from mobilenet.spec import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS, ModelSpec
from results.store import Store

MAX_TRIALS = 7
TARGET_CI = 0.03
BASE_MODEL = "mobilenet_v1_0.625_200"
SLOW_SPELL = 1.2


def _loads(db: Path, run_ids: Sequence[int]) -> list[float]:
    """The 1-minute load average each measurement's runner saw before it started."""
    with sqlite3.connect(db) as connection:
        documents = connection.execute(
            f"SELECT document FROM measurements WHERE run_id IN ({', '.join('?' * len(run_ids))})",
            list(run_ids),
        ).fetchall()
    loads = []
    for (text,) in documents:
        load = (json.loads(text or "{}").get("host_before") or {}).get("loadavg")
        if load:
            loads.append(float(load[0]))
    return loads


def lookup_rates(store: Store, run_ids: Sequence[int]) -> dict[str, float]:
    """Median ms per MAC of the probes of each kind (the head: per MAC of its FC)."""
    probes = store.probes_frame(list(run_ids))
    rates: dict[str, list[float]] = {}
    for record in probes.to_dict("records"):
        if record["p50_ms"] and record["macs"]:
            rates.setdefault(str(record["role"]), []).append(
                float(record["p50_ms"]) / float(record["macs"])
            )
    return {kind: statistics.median(values) for kind, values in rates.items()}


def lookup_ms(spec: ModelSpec, rates: dict[str, float]) -> float:
    total = 0.0
    for layer in scaled_layers(spec.alpha, spec.resolution, spec.variant, spec.kernel):
        kind = "head" if layer.role == "fc" else layer.role
        total += layer.macs * rates.get(kind, rates.get("pointwise", 0.0))
    return total


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=280.0)
    parser.add_argument("--trials", type=int, default=4, help="first trials per held-out model")
    parser.add_argument("--max-trials", type=int, default=MAX_TRIALS, help="per held-out model")
    parser.add_argument("--probes", type=int, default=None, help="sampled probes of the fit")
    parser.add_argument("--board", action="store_true", help="on the emulated aarch64 board")
    parser.add_argument("--keep", type=Path, default=None, help="keep the database here")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    bench_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "db.sqlite"
        models_dir = Path(tmp) / "models"
        base = ["--db", str(db), "--models-dir", str(models_dir), "--threads", str(args.threads)]
        device, inventory = "local", None
        if args.board:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.fixtures.build_arm64_sysroot import ensure_sysroot

            board = ensure_sysroot(log=True)
            inventory = Path(tmp) / "devices.toml"
            inventory.write_text(
                f"[devices.board]\nkind = \"local\"\npython = '{board.python_command}'\n"
            )
            device = "board"
            base += ["--inventory", str(inventory), "--device", device]
        if args.probes is not None:
            base += ["--probes", str(args.probes)]
        start = time.perf_counter()
        rc = mnbench(
            [
                "predict",
                *base,
                "--refit",
                "--budget-s",
                str(args.budget_s),
                "--quiet",
                "--alpha",
                "1.0",
                "--resolution",
                "224",
            ]
        )
        fit_wall_s = time.perf_counter() - start
        if rc != 0:
            raise SystemExit(f"mnbench predict exited {rc}")
        with Store.open(db) as store:
            found = store.latest_latency_model(
                device=device, threads=args.threads, precision="fp32"
            )
            assert found is not None
            model = FittedModel.from_json(found[3])
            fit_runs = found[2]
            measuring_s = 0.0
            for run_id in fit_runs:
                frame = store.measurements_frame([run_id])
                stamps = sorted(str(t) for t in frame["created_at"])
                run = store.get_run(run_id)
                measuring_s += (
                    datetime.fromisoformat(stamps[-1]) - datetime.fromisoformat(run.created_at)
                ).total_seconds()
            fit_loads = _loads(db, fit_runs)
            fit_results = store.results_frame(list(fit_runs))
            base_row = fit_results[fit_results["name"] == BASE_MODEL].iloc[0]
            base_ms = statistics.median(float(m) for m in base_row["trial_medians_ms"])
            ms_per_mac = base_ms / float(base_row["macs"])
            rates = lookup_rates(store, fit_runs)
            grid = [ModelSpec(a, r) for a in DEFAULT_ALPHAS for r in DEFAULT_RESOLUTIONS]
            held = [ModelSpec(a, r, v, k) for a, r, v, k in HELD_OUT]  # type: ignore[arg-type]
            specs = grid + held
            session = open_session(
                Target(
                    resolve(argparse.Namespace(device=device, inventory=inventory)),
                    threads=args.threads,
                ),
                store,
                RunnerSettings(target_ci=0.01, min_time_s=0.2, max_time_s=1.2),
            )
            truth_start = time.perf_counter()
            try:
                entries = prepare_models(specs, models_dir, store)
                from harness.measure.sweep import sweep_config
                from mobilenet import __version__

                run_id = store.create_run(
                    device=device,
                    device_kind="local",
                    device_facts=session.facts,
                    config=sweep_config(
                        entries,
                        [args.threads],
                        args.max_trials,
                        None,
                        session.measuring.settings,
                        device,
                        models_dir,
                        None,
                    ),
                    harness_version=__version__,
                    runtime_version=None,
                    label="predict-truth",
                )
                plan = [
                    PlanItem(e, args.threads, t, None)
                    for t in range(1, args.trials + 1)
                    for e in entries
                ]
                run_plan(session.measuring, run_id, plan)
                trials = args.trials
                while trials < args.max_trials:
                    truths = truths_from_run(store, run_id)
                    wide = [e for e in entries if truths[e.sha256].ci_rel > TARGET_CI]
                    if not wide:
                        break
                    trials += 1
                    run_plan(
                        session.measuring,
                        run_id,
                        [PlanItem(e, args.threads, trials, None) for e in wide],
                    )
            finally:
                session.close()
            truth_s = time.perf_counter() - truth_start
            truths = truths_from_run(store, run_id)
            truth_loads = _loads(db, [run_id])
    rows: list[dict[str, Any]] = []
    for spec, entry in zip(specs, entries, strict=True):
        truth = truths[entry.sha256]
        kernel = predict_variant(model, spec.alpha, spec.resolution, spec.variant, spec.kernel)
        macs = kernel.macs
        rows.append(
            {
                "name": spec.name,
                "set": "grid" if spec in grid else "off-grid",
                "truth": truth,
                "kernel": relative_error(kernel.latency_ms, truth.median_ms),
                "fastest": relative_error(kernel.latency_ms, truth.fastest_ms),
                "kernel_ms": kernel.latency_ms,
                "macs": relative_error(macs * ms_per_mac, truth.median_ms),
                "lookup": relative_error(lookup_ms(spec, rates), truth.median_ms),
            }
        )
    print()
    print(
        f"{'model':34s} {'set':8s} {'measured ms':>11s} {'CI ±':>6s} {'trials':>6s} "
        f"{'predicted':>9s} {'kernel err':>10s} {'MACs err':>9s} {'lookup err':>10s} "
        f"{'fastest':>8s} {'vs fastest':>10s}"
    )
    for r in rows:
        t = r["truth"]
        print(
            f"{r['name']:34s} {r['set']:8s} {t.median_ms:11.3f} {100 * t.ci_rel:5.1f}% "
            f"{t.trials:6d} {r['kernel_ms']:9.3f} {100 * r['kernel']:+9.1f}% "
            f"{100 * r['macs']:+8.1f}% {100 * r['lookup']:+9.1f}% "
            f"{t.fastest_ms:8.3f} {100 * r['fastest']:+9.1f}%"
        )
    print()
    print(f"fit: {model.rows} measurements ({model.whole_models} whole models) in runs {fit_runs}")
    print(
        f"fit: {measuring_s:.0f} s of measuring (target <= 300 s), {fit_wall_s:.0f} s wall "
        "(with generation, kernel detection and the fit)"
    )
    print(
        f"fit: layout block {model.block}, kernels detected: {model.provenance.detected}, "
        f"median/min scale {model.provenance.scale:.3f}, in-context factor {model.context:.3f}, "
        f"cross-validated within ±10 %: {model.cv_within_10:.0%}"
    )
    print(
        f"truth: {len(rows)} models, {truth_s:.0f} s, trials interleaved, up to {args.max_trials}; "
        f"{sum(1 for r in rows if r['truth'].ci_rel <= TARGET_CI)}/{len(rows)} with a 95 % "
        f"interval within ±{100 * TARGET_CI:.0f} %"
    )
    for label, loads in (("fit", fit_loads), ("truth", truth_loads)):
        if loads:
            print(
                f"load average (1 min) during the {label}: median {statistics.median(loads):.2f}, "
                f"max {max(loads):.2f} on {args.threads} threads"
            )
    load_after = os.getloadavg()
    print(
        f"benchmark wall {time.perf_counter() - bench_start:.0f} s; load average before "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
        f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print()
    print(f"{'share within':24s} {'±5 %':>8s} {'±10 %':>8s}   (n)")
    for subset in ("grid", "off-grid", "all"):
        chosen = [r for r in rows if subset == "all" or r["set"] == subset]
        for key, title in (
            ("kernel", "kernel model"),
            ("macs", "∝ MACs (0.625/200)"),
            ("lookup", "per-type lookup"),
        ):
            w5, w10 = within_shares(r[key] for r in chosen)
            print(
                f"{subset + ': ' + title:24s} {100 * w5:7.0f}% {100 * w10:7.0f}%   ({len(chosen)})"
            )
    w5, w10 = within_shares(r["fastest"] for r in rows)
    print(
        f"{'all: kernel model':24s} {100 * w5:7.0f}% {100 * w10:7.0f}%   ({len(rows)}) "
        "against each variant's fastest trial median"
    )
    slow = [
        m / r["truth"].fastest_ms
        for r in rows
        for m in r["truth"].trial_medians
        if m > SLOW_SPELL * r["truth"].fastest_ms
    ]
    total = sum(r["truth"].trials for r in rows)
    print(
        f"truth trials in a slow spell (median > {SLOW_SPELL:g}x the variant's fastest trial): "
        f"{len(slow)} of {total}" + (f", {min(slow):.2f}-{max(slow):.2f}x" if slow else "")
    )
    tight = [r for r in rows if r["truth"].ci_rel <= TARGET_CI]
    if not tight:
        print("no truth has a 95 % interval within ±3 %: the accuracy target cannot be judged")
        return
    w5, w10 = within_shares(r["kernel"] for r in tight)
    print(
        f"kernel model on the {len(tight)} truths with CI within ±3 %: "
        f"{100 * w5:.0f}% within ±5 %, {100 * w10:.0f}% within ±10 % (target >= 90 %)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
