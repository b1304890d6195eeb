"""Two runtimes on one device, measured side by side: the library of ``mnbench regress``.

Design ``pairs`` (the default): per cell, process pairs -- one baseline and one candidate
agent, started together -- alternate bursts while the idle one is suspended
(harness/measure/paired.py); pairs are added round by round to every undecided cell until the
sequential rule of results/paired.py decides it or the cell's budget (``max_pairs``,
``budget_s``) runs out. Every burst is stored, and the verdicts are those of ``mnbench
compare`` on the two runs, which replays the same rule from the store.

Design ``trials`` (phones measured with onnxruntime_perf_test, or asked for): for every
cell the trials alternate in ABBA order with a random start, each trial a fresh process;
the runs are compared unpaired, as ``mnbench compare`` does.

``measure_regress`` runs one regress in a ``MeasurementSession``: the two sides are two
measuring methods of the session (one interpreter each) sharing the files pushed to the
device.
Device guards come from the session: the trials design guards every trial as ``run``
does; the pairs design guards every process pair (one round of a cell: cool-down, a
reading before the pair starts and one after both processes ended), the same record
stored with both sides' measurement of the pair. The verdicts say which cells had
flagged rounds (``results.compare``); the statistics do not change.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devices.device import DeviceConfig
from devices.interactive import InteractiveTransport
from devices.transport import Transport, TransportError
from harness.measure.guard import Started, TrialGuard
from harness.measure.methods import MeasuringMethod
from harness.measure.paired import (
    AgentFailed,
    PairSettings,
    SideCommand,
    burst_rows,
    measure_pair,
    pair_document,
)
from harness.measure.plan import PlanItem, make_plan
from harness.measure.runtimes import ensure_runtime, remote_runtime_python
from harness.measure.session import MeasurementSession
from harness.measure.sweep import (
    ProgressBar,
    SweepOutcome,
    lease_stale_after_s,
    measure_into,
    models_from_config,
    prepare_models,
    stopping_marks,
)
from mobilenet.errors import UserError, check_stop
from mobilenet.spec import ModelSpec
from mobilenet.validate import distinct
from results.errors import ResultsError
from results.paired import DEFAULT_ALPHA, DEFAULT_MIN_PAIRS, Burst, Side
from results.store import Store, config_key

if TYPE_CHECKING:
    from results.compare import Comparison
    from results.paired import SequentialAnalysis


@dataclass(frozen=True)
class RegressPlan:
    """What one regress measures and how (the ``regress`` flags, in the library's units)."""

    baseline: str  # runtime specs: onnxruntime==X.Y.Z, an interpreter, or current
    candidate: str
    design: str  # "pairs" or "trials"
    device_arg: str  # the --device as given (stored for --resume)
    models_dir: Path
    threshold: float  # the smallest change that matters, a fraction
    max_pairs: int = 30
    budget_s: float = 120.0
    bursts_per_side: int = 16
    burst_target_s: float = 0.075
    trials: int = 6
    confirm: int = 0
    seed: int | None = None
    force: bool = False
    install: bool = False
    quiet: bool = False


def measure_regress(
    session: MeasurementSession,
    plan: RegressPlan,
    specs: Sequence[ModelSpec],
    threads_given: Sequence[int] | None,
) -> Comparison:
    """Measure both runtimes on the session's device into two runs; their comparison."""
    from results.compare import compare_runs

    store = session.store
    device = session.device
    transport = session.transport
    rng = random.Random(plan.seed)
    py_a, label_a = runtime_python(plan.baseline, device, transport, plan.install)
    py_b, label_b = runtime_python(plan.candidate, device, transport, plan.install)
    models = prepare_models(specs, plan.models_dir, store)
    session.use_python(py_a)
    sides: dict[str, MeasuringMethod] = {"A": session.method, "B": session.side(py_b)}
    chosen = session.select(None, distinct(threads_given, "--threads"))
    threads = chosen.threads
    design = plan.design
    if design == "pairs" and not sides["A"].serves_bursts:
        print(
            "regress: this device's runner cannot serve bursts; using --design trials",
            file=sys.stderr,
        )
        design = "trials"
    pairing = secrets.token_hex(8) if design == "pairs" else None
    runs: dict[str, int] = {}
    try:
        for side, label, spec in (
            ("A", label_a, plan.baseline),
            ("B", label_b, plan.candidate),
        ):
            role = "baseline" if side == "A" else "candidate"
            extra: dict[str, object] = {"runtime": spec, "regress_role": role, "design": design}
            if pairing is not None:
                extra.update(
                    pairing=pairing,
                    max_pairs=plan.max_pairs,
                    min_pairs=DEFAULT_MIN_PAIRS,
                    alpha=DEFAULT_ALPHA,
                    budget_s=plan.budget_s,
                    bursts_per_side=plan.bursts_per_side,
                    burst_target_s=plan.burst_target_s,
                    seed=plan.seed,
                )
            runs[side] = session.create_run(
                models,
                chosen,
                plan.trials,
                device_arg=plan.device_arg,
                models_dir=plan.models_dir,
                label=f"{role} {label}",
                holder="mnbench regress",
                extra_config=extra,
            )
        print(
            f"regress: baseline run {runs['A']} ({label_a}) vs candidate run "
            f"{runs['B']} ({label_b}) on {device.name}",
            file=sys.stderr,
        )
        outcomes = {side: SweepOutcome(run_id) for side, run_id in runs.items()}
        hint = resume_hint(store, runs["A"], runs["B"])
        session.set_resume_command(hint)
        stale_s = lease_stale_after_s(session.timeout_s)
        with (
            store.lease(runs["A"], "mnbench regress", stale_s),
            store.lease(runs["B"], "mnbench regress", stale_s),
            stopping_marks(store, list(runs.values()), hint),
        ):
            if design == "pairs":
                assert isinstance(transport, InteractiveTransport)
                items = make_plan(models, threads, 1, None)
                _run_pairs(plan, session, sides, runs, outcomes, items, transport, rng)
            else:
                items = make_plan(models, threads, plan.trials, None)
                pairs = [(item, item) for item in items]
                progress = None if plan.quiet else ProgressBar()
                _interleave(session, sides, runs, outcomes, pairs, rng, 1, progress)
            comparison = compare_runs(store, runs["A"], runs["B"], plan.threshold, force=plan.force)
            if design == "trials" and plan.confirm > 0 and comparison.count("slower"):
                comparison = _confirm(plan, session, sides, runs, outcomes, comparison, rng)
            for run_id in runs.values():
                store.set_run_status(run_id, "complete")
    except BaseException:
        for run_id in runs.values():
            with contextlib.suppress(Exception):
                if store.get_run(run_id).status == "running":
                    store.set_run_status(run_id, "interrupted")
        raise
    return comparison


def runtime_python(
    spec: str, device: DeviceConfig, transport: Transport, install: bool = False
) -> tuple[str | None, str]:
    """(python command for the device, a label) for a runtime spec."""
    if spec == "current":
        return device.python, "current"
    if spec.startswith("onnxruntime"):
        if device.this_machine:
            runtime = ensure_runtime(spec)
            return str(runtime.python), runtime.spec
        if not device.has_python:
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
    from harness.measure.stored import is_managed_runtime

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


def _cell_key(item: PlanItem) -> str:
    return f"{item.model.sha256}|{config_key(item.config)}"


def _run_pairs(
    plan: RegressPlan,
    session: MeasurementSession,
    sides: dict[str, MeasuringMethod],
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    items_planned: list[PlanItem],
    transport: InteractiveTransport,
    rng: random.Random,
) -> None:
    """Rounds of one process pair per undecided cell until every cell is decided or out of
    budget (results/paired.py ``SequentialAnalysis``); every burst goes to the store."""
    from results.paired import SequentialAnalysis, burst_log_ratios

    store = session.store
    settings = PairSettings(
        bursts_per_side=plan.bursts_per_side, burst_target_s=plan.burst_target_s
    )
    items = {_cell_key(item): item for item in items_planned}
    analysis = SequentialAnalysis(
        list(items), plan.threshold, DEFAULT_ALPHA, plan.max_pairs, DEFAULT_MIN_PAIRS
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
            if spent_s[key] >= plan.budget_s:
                analysis.stop(key)
                continue
            pair = len(analysis.cells[key].pairs) + 1
            commands: dict[Side, SideCommand] = {
                side: sides[side].burst_command(item) for side in ("A", "B")
            }
            guard = session.guard
            try:
                begun = guard.before() if guard else None
            except TransportError as lost:
                raise UserError(
                    f"lost {transport.name} during a guard reading ({lost.message}); the "
                    f"pairs measured are kept in runs {runs['A']} and {runs['B']}: fix the "
                    "device and run regress again"
                ) from lost
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
            guards = _pair_guards(guard, begun, result.documents, transport, runs)
            for side in ("A", "B"):
                doc = pair_document(result, side)
                if guards is not None:
                    doc["guards"] = guards
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
        if not plan.quiet:
            _progress(round_index, analysis, items, spent_s)


def _pair_guards(
    guard: TrialGuard | None,
    begun: Started | None,
    documents: Mapping[Side, Mapping[str, object]],
    transport: InteractiveTransport,
    runs: dict[str, int],
) -> dict[str, object] | None:
    """The guard record of one process pair (both sides' CPU time are the pair's own: on a
    remote device the sum of the two runners' ``process_cpu_s`` when both report it)."""
    if guard is None or begun is None:
        return None
    reported = [documents[side].get("process_cpu_s") for side in ("A", "B")]
    numbers = [
        float(v) for v in reported if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    own: dict[str, object] = {}
    if len(numbers) == 2:
        own["process_cpu_s"] = sum(numbers)
    try:
        return guard.after(begun, own, None)
    except TransportError as lost:
        raise UserError(
            f"lost {transport.name} during a guard reading ({lost.message}); the pairs "
            f"measured are kept in runs {runs['A']} and {runs['B']}: fix the device and run "
            "regress again"
        ) from lost


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
    session: MeasurementSession,
    sides: dict[str, MeasuringMethod],
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
        measure_into(session, runs[side], item, outcomes[side], sides[side])
    if progress:
        progress(len(order), len(order), None, None)


def _confirm(
    plan: RegressPlan,
    session: MeasurementSession,
    sides: dict[str, MeasuringMethod],
    runs: dict[str, int],
    outcomes: dict[str, SweepOutcome],
    comparison: Comparison,
    rng: random.Random,
) -> Comparison:
    """More trials for the cells flagged slower, then compare again."""
    from results.compare import compare_runs

    store = session.store
    slower = {(c.sha256, c.config_key) for c in comparison.cells if c.verdict == "slower"}
    stored = store.get_run(runs["A"]).config
    models = {m.sha256: m for m in models_from_config(stored, store, plan.models_dir)}
    pairs: list[tuple[PlanItem, PlanItem]] = []
    start = plan.trials + 1
    for sha, key in slower:
        threads = int(json.loads(key)["threads"])
        for trial in range(start, start + plan.confirm):
            item = PlanItem(models[sha], threads, trial, None)
            pairs.append((item, item))
    print(
        f"confirming {len(slower)} slower cell(s) with {plan.confirm} more trials per side",
        file=sys.stderr,
    )
    progress = None if plan.quiet else ProgressBar()
    _interleave(session, sides, runs, outcomes, pairs, rng, start, progress)
    return compare_runs(store, runs["A"], runs["B"], plan.threshold, force=plan.force)
