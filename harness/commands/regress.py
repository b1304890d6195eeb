"""``mnbench regress``: two runtimes on one device, trials interleaved, a verdict, exit codes.

Both runtimes measure the same models in one session; for every cell the trials alternate
in ABBA order with a random start (so drift and warm caches fall on both sides alike), each
trial a fresh process. Both runs are stored, then compared as ``mnbench compare`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from devices.device import DeviceConfig
from devices.facts import probe_device
from devices.transport import Transport
from harness import __version__
from harness.commands.compare import add_threshold_arguments, render
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
from harness.errors import UserError
from harness.grid import add_grid_arguments, specs_from_args
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
from results.store import Store, default_db_path

if TYPE_CHECKING:
    from results.compare import Comparison

EXAMPLES = """examples:
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1 \\
      --alpha 0.25 0.5 --resolution 128 --trials 8 --confirm 4
  mnbench regress --device pi4 --baseline /opt/ort-a/bin/python --candidate /opt/ort-b/bin/python
exit codes: 0 no confirmed regression; 1 a confirmed regression, or a model that fails only
under the candidate; 2 a usage or harness error; 3 inconclusive (a CI job can retry);
--warn-only always exits 0.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "regress",
        help="A/B two onnxruntime versions on one device with a statistical verdict",
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
        "--trials",
        type=int_arg("--trials", 1, MAX_TRIALS),
        default=6,
        metavar="K",
        help="trials per side and cell (default 6; fewer than 6 can rarely reach significance)",
    )
    parser.add_argument(
        "--confirm",
        type=int_arg("--confirm", 0, MAX_TRIALS),
        default=0,
        metavar="N",
        help="re-measure cells found slower with N more trials per side before failing",
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
    with contextlib.suppress(UserError):
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
    argv += ["--trials", str(config.get("trials"))]
    return shlex.join(argv)


def resume_hint(store: Store, baseline_id: int, candidate_id: int) -> str:
    """How to finish a stopped regress: resume both sides with their own runtimes and compare,
    or (a side measured with an interpreter path) run the same regress again."""
    from harness.stored import is_managed_runtime

    runtimes = [store.get_run(r).config.get("runtime") for r in (baseline_id, candidate_id)]
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


def run(args: argparse.Namespace) -> int:
    from results.compare import compare_runs, exit_code

    if args.trials < 2:
        raise UserError("--trials must be at least 2 per side (6 or more to reach significance)")
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
            plan = make_plan(models, threads, args.trials, None)
            pairs = [(item, item) for item in plan]
            progress = None if args.quiet else ProgressBar()
            hint = resume_hint(store, runs["A"], runs["B"])
            for sweep in sweeps.values():
                sweep.resume_command = hint
            stale_s = lease_stale_after_s(sweeps["A"].timeout_s)
            with (
                store.lease(runs["A"], "mnbench regress", stale_s),
                store.lease(runs["B"], "mnbench regress", stale_s),
                stopping_marks(store, list(runs.values()), hint),
            ):
                _interleave(sweeps, runs, outcomes, pairs, rng, 1, progress)
                comparison = compare_runs(
                    store, runs["A"], runs["B"], args.threshold / 100, force=args.force
                )
                if args.confirm > 0 and comparison.count("slower"):
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
    print(render(comparison, args.format))
    return 0 if args.warn_only else exit_code(comparison)


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
