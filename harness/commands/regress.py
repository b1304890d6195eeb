"""``mnbench regress``: two runtimes on one device, measured side by side, a verdict, exit codes.

Design ``pairs`` (the default): per cell, process pairs -- one baseline and one candidate
runner in agent mode, started together -- alternate bursts while the idle one is suspended
(harness/measure/paired.py); pairs are added round by round to every undecided cell until the
sequential rule of results/paired.py decides it or the cell's budget (``--max-pairs``,
``--budget`` seconds) runs out. Every burst is stored, and the verdicts printed are those
of ``mnbench compare`` on the two runs, which replays the same rule from the store.

Design ``trials`` (phones measured with onnxruntime_perf_test, or ``--design trials``):
for every cell the trials alternate in ABBA order with a random start, each trial a fresh
process; the runs are compared unpaired, as ``mnbench compare`` does.

This module is the command: its flags, their checks and the output; the measuring is
``harness.measure.runtime_ab`` over ``harness.measure.regress``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.compare import chart_guard, render, write_chart
from harness.commands.exits import EXIT_OK
from harness.commands.grid import add_grid_arguments, specs_from_args
from harness.commands.measuring import (
    REGRESS_MAX_TIME_S,
    add_plan_limit_argument,
    add_stopping_arguments,
    add_threshold_arguments,
    add_trials_argument,
    settings_from_args,
)
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_device_arguments,
    add_keep_workdir_argument,
    add_models_dir_argument,
    add_quiet_argument,
    add_threads_argument,
    cooldown_from_args,
    default_models_dir,
)
from harness.measure.regress import RegressPlan
from harness.measure.requests import RegressRequest
from harness.measure.runtimes import parse_spec
from mobilenet.errors import UserError
from mobilenet.validate import INT64_MAX, MAX_TRIALS, check_plan_size, int_arg
from results.connection import default_db_path

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
    add_threads_argument(parser, default="all cores")
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
    add_trials_argument(
        parser,
        "trials design: trials per side and cell",
        default=6,
        more="; fewer than 6 can rarely reach significance",
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
    add_stopping_arguments(parser, REGRESS_MAX_TIME_S)
    add_cooldown_arguments(parser)
    add_models_dir_argument(parser)
    add_quiet_argument(parser)
    add_threshold_arguments(parser)
    add_plan_limit_argument(parser)
    add_db_argument(parser)
    add_keep_workdir_argument(parser)


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


def _check_runtime(flag: str, spec: str, device: str) -> None:
    """Refuse an empty runtime, or on this machine a Python that is missing or a directory,
    before anything is created."""
    if not spec.strip():
        raise UserError(f"{flag} is empty; give current, onnxruntime==X.Y.Z or a Python path")
    if spec == "current" or spec.startswith("onnxruntime") or device != "local":
        return
    path = Path(spec).expanduser()
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(
            f"{flag} {path} {where}; give current, onnxruntime==X.Y.Z or the path of a Python"
        )


def run(args: argparse.Namespace) -> int:
    from harness.commands.exits import comparison_exit_code
    from harness.measure.runtime_ab import regress_runtimes

    if args.trials < 2:
        raise UserError("--trials must be at least 2 per side (6 or more to reach significance)")
    _check_pair_args(args)
    settings = settings_from_args(args)
    cooldown = cooldown_from_args(args)
    for flag, spec in (("--baseline", args.baseline), ("--candidate", args.candidate)):
        _check_runtime(flag, spec, args.device)
        if spec.startswith("onnxruntime"):
            parse_spec(spec)  # a malformed release is refused before the store exists
    protected = chart_guard(args.chart, args.db or default_db_path())
    specs = specs_from_args(args)
    check_plan_size(len(specs) * 2, args.threads, args.trials + args.confirm, args.max_plan)
    plan = RegressPlan(
        baseline=args.baseline,
        candidate=args.candidate,
        design=args.design,
        device_arg=args.device,
        models_dir=args.models_dir or default_models_dir(),
        threshold=args.threshold / 100,
        max_pairs=args.max_pairs,
        budget_s=args.budget,
        bursts_per_side=args.bursts,
        burst_target_s=args.burst_ms / 1000,
        trials=args.trials,
        confirm=args.confirm,
        seed=args.seed,
        force=args.force,
        install=args.install,
        quiet=args.quiet,
    )
    request = RegressRequest(
        args.device, plan, tuple(specs), settings, args.threads, cooldown, args.inventory,
        args.db, args.keep_workdir,
    )  # fmt: skip
    comparison = regress_runtimes(request)
    write_chart(comparison, args.chart, protected)
    print(render(comparison, args.format))
    return EXIT_OK if args.warn_only else comparison_exit_code(comparison)
