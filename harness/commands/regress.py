"""``mnbench regress``: two runtimes on one device, measured side by side, a verdict, exit codes.

Design ``pairs`` (the default): per cell, process pairs -- one baseline and one candidate
runner in agent mode, started together -- alternate bursts while the idle one is suspended
(harness/paired.py); pairs are added round by round to every undecided cell until the
sequential rule of results/paired.py decides it or the cell's budget (``--max-pairs``,
``--budget`` seconds) runs out. Every burst is stored, and the verdicts printed are those
of ``mnbench compare`` on the two runs, which replays the same rule from the store.

Design ``trials`` (phones measured with onnxruntime_perf_test, or ``--design trials``):
for every cell the trials alternate in ABBA order with a random start, each trial a fresh
process; the runs are compared unpaired, as ``mnbench compare`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import secrets
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from devices.device import DeviceConfig
from devices.facts import probe_device
from devices.interactive import InteractiveTransport
from devices.transport import Transport, TransportError
from harness import __version__
from harness.commands import SUMMARIES
from harness.commands.compare import add_threshold_arguments, render, write_chart
from harness.commands.generate import default_models_dir
from harness.commands.run import (
    add_db_argument,
    add_device_arguments,
    add_keep_workdir_argument,
    add_plan_limit_argument,
    open_run_transport,
    resolve,
    settings_from_args,
)
from harness.errors import UserError, check_stop
from harness.grid import add_grid_arguments, specs_from_args
from harness.paired import (
    AgentFailed,
    PairSettings,
    SideCommand,
    burst_rows,
    measure_pair,
    pair_document,
)
from harness.runtimes import ensure_runtime, parse_spec, remote_runtime_python
from harness.sweep import (
    PlanItem,
    ProgressBar,
    Sweep,
    SweepOutcome,
    default_cpu_count,
    lease_stale_after_s,
    make_plan,
    measure_into,
    models_from_config,
    prepare_models,
    stopping_marks,
    sweep_config,
)
from harness.validate import (
    INT64_MAX,
    MAX_THREADS,
    MAX_TIME_S,
    MAX_TRIALS,
    check_plan_size,
    distinct,
    float_arg,
    int_arg,
)
from results.errors import ResultsError
from results.paired import DEFAULT_ALPHA, DEFAULT_MIN_PAIRS, Burst, Side
from results.store import Store, config_key, default_db_path

if TYPE_CHECKING:
    from results.compare import Comparison
    from results.paired import SequentialAnalysis

EXAMPLES = """examples:
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1 \\
      --alpha 0.5 1.0 --resolution 160 --budget 60 --chart out/ --format markdown
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1 \\
      --design trials --trials 8 --confirm 4
  mnbench regress --device pi4 --baseline /opt/ort-a/bin/python --candidate /opt/ort-b/bin/python
design: pairs of processes alternate bursts (the idle one suspended) until each cell is
decided: unchanged, slower or faster, or inconclusive when --budget/--max-pairs run out.
exit codes: 0 no confirmed regression; 1 a confirmed regression, or a model that fails only
under the candidate; 2 a usage or harness error; 3 inconclusive (a CI job can retry);
--warn-only always exits 0.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "regress",
        help=SUMMARIES["regress"],
        description="Runtimes: onnxruntime==X.Y.Z (an isolated environment on this machine, "
        "created on first use), a path or command of an interpreter on the device, or "
        "'current' (the device's default Python).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_arguments(parser)
    parser.add_argument("--baseline", required=True, metavar="RUNTIME")
    parser.add_argument("--candidate", required=True, metavar="RUNTIME")
    add_grid_arguments(parser)
    parser.add_argument(
        "--threads",
        nargs="+",
        type=int_arg("--threads", 1, MAX_THREADS),
        metavar="N",
        help="intra-op thread counts (default: all cores)",
    )
    parser.add_argument(
        "--design",
        choices=("pairs", "trials"),
        default="pairs",
        help="pairs: interleaved bursts in process pairs with sequential stopping (default); "
        "trials: fresh processes in ABBA order, fixed count (--trials)",
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=30,
        metavar="N",
        help="pairs design: at most N process pairs per cell (default 30; the first look is "
        "at 3, or at N when smaller)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        metavar="S",
        help="pairs design: at most S seconds of measuring per cell (default 120)",
    )
    parser.add_argument(
        "--bursts",
        type=int,
        default=16,
        metavar="M",
        help="pairs design: bursts per side in each pair (default 16)",
    )
    parser.add_argument(
        "--burst-ms",
        type=float,
        default=75.0,
        metavar="MS",
        help="pairs design: target duration of one burst (default 75)",
    )
    parser.add_argument(
        "--trials",
        type=int_arg("--trials", 1, MAX_TRIALS),
        default=6,
        metavar="K",
        help="trials design: trials per side and cell (default 6; fewer than 6 can rarely "
        "reach significance)",
    )
    parser.add_argument(
        "--confirm",
        type=int_arg("--confirm", 0, MAX_TRIALS),
        default=0,
        metavar="N",
        help="trials design: re-measure cells found slower with N more trials per side "
        "before failing",
    )
    parser.add_argument("--warn-only", action="store_true", help="always exit 0")
    parser.add_argument(
        "--install",
        action="store_true",
        help="on a board: create missing onnxruntime==X environments there with pip",
    )
    parser.add_argument(
        "--seed",
        type=int_arg("--seed", 0, INT64_MAX),
        default=None,
        help="seed of the randomised ABBA order (default: random)",
    )
    parser.add_argument(
        "--min-time", type=float_arg("--min-time", high=MAX_TIME_S), default=0.5, metavar="S"
    )
    parser.add_argument(
        "--max-time", type=float_arg("--max-time", high=MAX_TIME_S), default=5.0, metavar="S"
    )
    parser.add_argument(
        "--target-ci", type=float_arg("--target-ci", high=100.0), default=1.0, metavar="PCT"
    )
    parser.add_argument("--models-dir", type=Path, default=None, metavar="DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threshold_arguments(parser)
    add_plan_limit_argument(parser)
    add_db_argument(parser)
    add_keep_workdir_argument(parser)


def runtime_python(
    spec: str, device: DeviceConfig, transport: Transport, install: bool = False
) -> tuple[str | None, str]:
    """(python command for the device, a label) for a runtime spec."""
    if spec == "current":
        return device.python, "current"
    if spec.startswith("onnxruntime"):
        if device.kind == "local":
            runtime = ensure_runtime(spec)
            return str(runtime.python), runtime.spec
        if device.kind == "adb" and not device.python:
            raise UserError(
                f"{spec}: a phone's runtime is its onnxruntime_perf_test build; give the two "
                "builds as two device entries and compare their runs with `mnbench compare`"
            )
        python = remote_runtime_python(transport, device.python_argv, spec, install)
        return python, spec
    return spec, spec


def regress_command(store: Store, run_id: int) -> str:
    """The ``mnbench regress`` command that measures a stored regress run's pair again."""
    record = store.get_run(run_id)
    config = record.config
    role = config.get("regress_role")
    sibling_id = run_id + 1 if role == "baseline" else run_id - 1
    runtimes = {str(role): str(config.get("runtime"))}
    with contextlib.suppress(ResultsError):
        sibling = store.get_run(sibling_id).config
        if (
            sibling.get("regress_role") in ("baseline", "candidate")
            and sibling.get("regress_role") != role
        ):
            runtimes[str(sibling["regress_role"])] = str(sibling.get("runtime"))
    argv = ["mnbench", "regress", "--device", str(config.get("device") or record.device)]
    argv += ["--baseline", runtimes.get("baseline", "RUNTIME")]
    argv += ["--candidate", runtimes.get("candidate", "RUNTIME")]
    specs = [m.get("spec") for m in config.get("models") or []]
    if specs and all(isinstance(spec, dict) for spec in specs):
        for flag, key in (
            ("--alpha", "alpha"),
            ("--resolution", "resolution"),
            ("--variant", "variant"),
            ("--kernel", "kernel"),
            ("--precision", "precision"),
        ):
            values = list(dict.fromkeys(str(spec.get(key)) for spec in specs))
            argv += [flag, *values]
    argv += ["--threads", *map(str, config.get("threads") or [])]
    if config.get("design") == "pairs":
        argv += ["--design", "pairs"]
    else:
        argv += ["--design", "trials", "--trials", str(config.get("trials"))]
    return shlex.join(argv)


def resume_hint(store: Store, baseline_id: int, candidate_id: int) -> str:
    """How to finish a stopped regress: resume both sides with their own runtimes and compare,
    or (a side measured with an interpreter path) run the same regress again."""
    from harness.stored import is_managed_runtime

    configs = [store.get_run(r).config for r in (baseline_id, candidate_id)]
    runtimes = [config.get("runtime") for config in configs]
    if any(config.get("design") == "pairs" for config in configs):
        # Pairs time both sides inside one pair of processes: one side alone cannot resume.
        return f"measure again with `{regress_command(store, baseline_id)}`"
    if all(r == "current" or (isinstance(r, str) and is_managed_runtime(r)) for r in runtimes):
        return (
            f"finish both sides with `mnbench run --resume {baseline_id}` and "
            f"`mnbench run --resume {candidate_id}` (each with its own runtime), then "
            f"`mnbench compare {baseline_id} {candidate_id}`, or start again with "
            f"`{regress_command(store, baseline_id)}`"
        )
    return f"measure again with `{regress_command(store, baseline_id)}`"


def abba_order(
    items: list[tuple[PlanItem, PlanItem]], rng: random.Random, trial_offset: int
) -> list[tuple[str, PlanItem]]:
    """Interleave A/B pairs: per cell, ABBA... with a random start; cells shuffled per round."""
    by_trial: dict[int, list[tuple[PlanItem, PlanItem]]] = {}
    for a, b in items:
        by_trial.setdefault(a.trial, []).append((a, b))
    starts: dict[tuple[str, int], int] = {}
    order: list[tuple[str, PlanItem]] = []
    for trial in sorted(by_trial):
        pairs = by_trial[trial]
        rng.shuffle(pairs)
        for a, b in pairs:
            cell = (a.model.sha256, a.threads)
            start = starts.setdefault(cell, rng.randrange(2))
            if (trial - trial_offset + start) % 2 == 0:
                order += [("A", a), ("B", b)]
            else:
                order += [("B", b), ("A", a)]
    return order


def _check_pair_args(args: argparse.Namespace) -> None:
    checks = [
        (args.max_pairs >= 2, "--max-pairs must be at least 2"),
        (math.isfinite(args.budget) and args.budget > 0, "--budget must be a positive number"),
        (args.bursts >= 2, "--bursts must be at least 2"),
        (
            math.isfinite(args.burst_ms) and 1 <= args.burst_ms <= 10000,
            "--burst-ms must be between 1 and 10000",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def run(args: argparse.Namespace) -> int:
    from results.compare import compare_runs, exit_code

    if args.trials < 2:
        raise UserError("--trials must be at least 2 per side (6 or more to reach significance)")
    _check_pair_args(args)
    settings = settings_from_args(args)
    for spec in (args.baseline, args.candidate):
        if spec.startswith("onnxruntime"):
            parse_spec(spec)  # a malformed release is refused before the store exists
    specs = specs_from_args(args)
    check_plan_size(len(specs) * 2, args.threads, args.trials + args.confirm, args.max_plan)
    device = resolve(args)
    rng = random.Random(args.seed)
    db_path = args.db or default_db_path()
    with (
        contextlib.closing(open_run_transport(device, args)) as transport,
        Store.open(db_path) as store,
    ):
        py_a, label_a = runtime_python(args.baseline, device, transport, args.install)
        py_b, label_b = runtime_python(args.candidate, device, transport, args.install)
        models_dir = args.models_dir or default_models_dir()
        models = prepare_models(specs, models_dir, store)
        sweeps = {
            "A": Sweep(replace(device, python=py_a), store, settings, None, transport),
            "B": Sweep(replace(device, python=py_b), store, settings, None, transport),
        }
        sweeps["B"].share_files(sweeps["A"])
        facts = probe_device(device, transport)
        threads = distinct(args.threads, "--threads") or [default_cpu_count(facts)]
        design = args.design
        if design == "pairs" and (
            sweeps["A"].uses_perf_test or not isinstance(transport, InteractiveTransport)
        ):
            print(
                "regress: this device's runner cannot serve bursts; using --design trials",
                file=sys.stderr,
            )
            design = "trials"
        pairing = secrets.token_hex(8) if design == "pairs" else None
        runs: dict[str, int] = {}
        kept: str | None = None
        try:
            for side, label, spec in (
                ("A", label_a, args.baseline),
                ("B", label_b, args.candidate),
            ):
                role = "baseline" if side == "A" else "candidate"
                config = sweep_config(
                    models, threads, args.trials, None, settings, args.device, models_dir, None
                )
                config["runtime"] = spec
                config["regress_role"] = role
                config["design"] = design
                if pairing is not None:
                    config.update(
                        pairing=pairing,
                        max_pairs=args.max_pairs,
                        min_pairs=DEFAULT_MIN_PAIRS,
                        alpha=DEFAULT_ALPHA,
                        budget_s=args.budget,
                        bursts_per_side=args.bursts,
                        burst_target_s=args.burst_ms / 1000,
                        seed=args.seed,
                    )
                runs[side] = store.create_run(
                    device=device.name,
                    device_kind=device.kind,
                    device_facts=facts,
                    config=config,
                    harness_version=__version__,
                    runtime_version=None,
                    label=f"{role} {label}",
                    lease_holder="mnbench regress",
                    lease_stale_after_s=lease_stale_after_s(sweeps["A"].timeout_s),
                )
            print(
                f"regress: baseline run {runs['A']} ({label_a}) vs candidate run "
                f"{runs['B']} ({label_b}) on {device.name}",
                file=sys.stderr,
            )
            outcomes = {side: SweepOutcome(run_id) for side, run_id in runs.items()}
            hint = resume_hint(store, runs["A"], runs["B"])
            for sweep in sweeps.values():
                sweep.resume_command = hint
            stale_s = lease_stale_after_s(sweeps["A"].timeout_s)
            with (
                store.lease(runs["A"], "mnbench regress", stale_s),
                store.lease(runs["B"], "mnbench regress", stale_s),
                stopping_marks(store, list(runs.values()), hint),
            ):
                if design == "pairs":
                    assert isinstance(transport, InteractiveTransport)
                    plan = make_plan(models, threads, 1, None)
                    _run_pairs(args, store, sweeps, runs, outcomes, plan, transport, rng)
                else:
                    plan = make_plan(models, threads, args.trials, None)
                    pairs = [(item, item) for item in plan]
                    progress = None if args.quiet else ProgressBar()
                    _interleave(sweeps, runs, outcomes, pairs, rng, 1, progress)
                comparison = compare_runs(
                    store, runs["A"], runs["B"], args.threshold / 100, force=args.force
                )
                if design == "trials" and args.confirm > 0 and comparison.count("slower"):
                    comparison = _confirm(args, store, sweeps, runs, outcomes, comparison, rng)
                for run_id in runs.values():
                    store.set_run_status(run_id, "complete")
        except BaseException:
            for run_id in runs.values():
                with contextlib.suppress(Exception):
                    if store.get_run(run_id).status == "running":
                        store.set_run_status(run_id, "interrupted")
            raise
        finally:
            for sweep in sweeps.values():
                sweep.keep_files = args.keep_workdir
                kept = sweep.session_dir or kept
                sweep.remove_files()
    if kept and args.keep_workdir:
        where = kept if transport.name == "local" else f"{transport.name}:{kept}"
        print(f"kept the work directory {where}", file=sys.stderr)
    write_chart(comparison, args.chart)
    print(render(comparison, args.format))
    return 0 if args.warn_only else exit_code(comparison)


def _cell_key(item: PlanItem) -> str:
    return f"{item.model.sha256}|{config_key(item.config)}"


def _side_command(sweep: Sweep, item: PlanItem) -> SideCommand:
    argv = [
        *sweep.device.python_argv,
        sweep.push_runner(),
        sweep.push_model(item.model),
        "--threads",
        str(item.threads),
        "--opt-level",
        sweep.settings.opt_level,
    ]
    if item.cpus:
        argv += ["--cpus", ",".join(map(str, item.cpus))]
    for shape in item.model.shapes:
        argv += ["--shape", shape]
    return SideCommand(tuple(argv), dict(sweep.device.env) or None)


def _run_pairs(
    args: argparse.Namespace,
    store: Store,
    sweeps: dict[str, Sweep],
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    plan: list[PlanItem],
    transport: InteractiveTransport,
    rng: random.Random,
) -> None:
    """Rounds of one process pair per undecided cell until every cell is decided or out of
    budget (results/paired.py ``SequentialAnalysis``); every burst goes to the store."""
    from results.paired import SequentialAnalysis, burst_log_ratios

    settings = PairSettings(bursts_per_side=args.bursts, burst_target_s=args.burst_ms / 1000)
    items = {_cell_key(item): item for item in plan}
    analysis = SequentialAnalysis(
        list(items), args.threshold / 100, DEFAULT_ALPHA, args.max_pairs, DEFAULT_MIN_PAIRS
    )
    spent_s = dict.fromkeys(items, 0.0)
    burst_sizes: dict[str, int] = {}
    failed: set[str] = set()
    round_index = 0
    while True:
        todo = [k for k in analysis.undecided() if k not in failed]
        if not todo:
            break
        round_index += 1
        rng.shuffle(todo)
        for key in todo:
            check_stop()  # a stop signal whose exception was swallowed still stops here
            item = items[key]
            if spent_s[key] >= args.budget:
                analysis.stop(key)
                continue
            pair = len(analysis.cells[key].pairs) + 1
            commands: dict[Side, SideCommand] = {
                side: _side_command(sweeps[side], item) for side in ("A", "B")
            }
            started = time.monotonic()
            try:
                result = measure_pair(transport, commands, rng, settings, burst_sizes.get(key))
            except AgentFailed as exc:
                if exc.transport_error:
                    _check_reachable(transport, runs, exc)
                _record_failure(store, runs, outcomes, item, pair, exc)
                failed.add(key)
                analysis.stop(key)
                continue
            finally:
                spent_s[key] += time.monotonic() - started
            burst_sizes[key] = result.burst_size
            for side in ("A", "B"):
                doc = pair_document(result, side)
                store.add_bursts(
                    run_id=runs[side],
                    model_sha256=item.model.sha256,
                    config=item.config,
                    pair=pair,
                    bursts=burst_rows(result, side),
                )
                store.add_measurement(
                    run_id=runs[side],
                    model_sha256=item.model.sha256,
                    config=item.config,
                    trial=pair,
                    status="ok",
                    reason=None,
                    document=doc,
                )
                outcomes[side].measured += 1
                version = (doc.get("runtime") or {}).get("version")
                if not outcomes[side].runtime_version and version:
                    store.set_runtime_version(runs[side], str(version))
                    outcomes[side].runtime_version = str(version)
            bursts = [
                Burst(pair, b.position, b.side, b.start_unix or 0.0, b.samples_ms)
                for b in result.bursts
            ]
            analysis.add(key, burst_log_ratios(bursts))
        analysis.look()
        if not args.quiet:
            _progress(round_index, analysis, items, spent_s)


def _check_reachable(
    transport: InteractiveTransport, runs: dict[str, int], exc: AgentFailed
) -> None:
    """A side failed on a transport error: if the device is gone, stop (nothing is blamed
    on either runtime); if it answers, the side itself failed."""
    try:
        transport.run(["true"], timeout_s=30)
    except TransportError as lost:
        raise UserError(
            f"lost {transport.name} during a process pair ({lost.message}); the pairs "
            f"measured are kept in runs {runs['A']} and {runs['B']}: fix the device and run "
            "regress again"
        ) from exc


def _record_failure(
    store: Store,
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    item: PlanItem,
    pair: int,
    exc: AgentFailed,
) -> None:
    store.add_measurement(
        run_id=runs[exc.side],
        model_sha256=item.model.sha256,
        config=item.config,
        trial=pair,
        status="failed",
        reason=exc.reason,
        document=dict(exc.document) if exc.document else None,
    )
    outcomes[exc.side].failures.append((f"{item.model.name} threads={item.threads}", exc.reason))


def _progress(
    round_index: int,
    analysis: SequentialAnalysis,
    items: dict[str, PlanItem],
    spent_s: dict[str, float],
) -> None:
    parts = []
    for key, state in analysis.cells.items():
        item = items[key]
        est = state.estimate
        ratio = f" {est.ratio:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}]" if est else ""
        status = state.verdict if state.decided else "..."
        parts.append(
            f"{item.model.name} t{item.threads}: {len(state.pairs)} pairs{ratio} "
            f"{status} ({spent_s[key]:.0f} s)"
        )
    print(f"round {round_index}: " + "; ".join(parts), file=sys.stderr)


def _interleave(
    sweeps: dict[str, Sweep],
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    pairs: list[tuple[PlanItem, PlanItem]],
    rng: random.Random,
    trial_offset: int,
    progress: ProgressBar | None,
) -> None:
    order = abba_order(pairs, rng, trial_offset)
    for index, (side, item) in enumerate(order):
        if progress:
            progress(index, len(order), item, None)
        measure_into(sweeps[side], runs[side], item, outcomes[side])
    if progress:
        progress(len(order), len(order), None, None)


def _confirm(
    args: argparse.Namespace,
    store: Store,
    sweeps: dict[str, Sweep],
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    comparison: Comparison,
    rng: random.Random,
) -> Comparison:
    """More trials for the cells flagged slower, then compare again."""
    from results.compare import compare_runs

    slower = {(c.sha256, c.config_key) for c in comparison.cells if c.verdict == "slower"}
    models = {m.sha256: m for m in models_from_config(store.get_run(runs["A"]).config, store)}
    pairs: list[tuple[PlanItem, PlanItem]] = []
    start = args.trials + 1
    for sha, key in slower:
        threads = int(json.loads(key)["threads"])
        for trial in range(start, start + args.confirm):
            item = PlanItem(models[sha], threads, trial, None)
            pairs.append((item, item))
    print(
        f"confirming {len(slower)} slower cell(s) with {args.confirm} more trials per side",
        file=sys.stderr,
    )
    _interleave(sweeps, runs, outcomes, pairs, rng, start, None if args.quiet else ProgressBar())
    return compare_runs(store, runs["A"], runs["B"], args.threshold / 100, force=args.force)
