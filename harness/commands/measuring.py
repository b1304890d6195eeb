"""The flags several verbs share that say how long and how often to measure, and how a
verdict is given: ``--trials``, the runner's stopping rule, ``--timeout``, ``--max-plan``
and ``--threshold`` with its output flags.

Units follow the flag: ``--target-ci`` and ``--threshold`` are percents on the command line;
the runner takes its stopping CI as a fraction, converted once, by ``percent_arg`` as the flag
is parsed, and the stopping defaults are the agent's own (``devices/agent/cli.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devices.agent.cli import DEFAULT_MAX_TIME_S, DEFAULT_MIN_TIME_S, DEFAULT_TARGET_CI
from harness.commands.options import add_cpus_argument
from mobilenet.errors import UserError
from mobilenet.validate import INT64_MAX, MAX_PLAN_ITEMS, MAX_TIME_S, MAX_TRIALS, float_arg, int_arg

if TYPE_CHECKING:
    from harness.measure.plan import RunnerSettings

REGRESS_MAX_TIME_S = 5.0
"""``regress`` times two runtimes per cell, so each trial is capped sooner."""
DEFAULT_THRESHOLD_PCT = 5.0  # results.compare.DEFAULT_THRESHOLD, without importing scipy here
DEFAULT_TRIALS = 3


def percent_arg(flag: str, high_pct: float = 100.0) -> Callable[[str], float]:
    """An argparse ``type=``: a percent typed by the user, as the fraction the library takes
    (the one place a CLI percent becomes a fraction)."""
    parse_pct = float_arg(flag, high=high_pct)

    def parse(text: str) -> float:
        return parse_pct(text) / 100

    return parse


def add_measurement_arguments(parser: argparse.ArgumentParser, trials_what: str) -> None:
    """--trials, --cpus, the runner's stopping rule, --timeout and --max-plan: shared by
    run, lab plan and layers."""
    add_trials_argument(parser, trials_what)
    add_cpus_argument(parser)
    add_stopping_arguments(parser, DEFAULT_MAX_TIME_S)
    parser.add_argument(
        "--timeout",
        type=float_arg("--timeout", high=MAX_TIME_S),
        default=None,
        metavar="S",
        help="kill a runner after S seconds (default 4 x max-time + 30)",
    )
    add_plan_limit_argument(parser)


def add_trials_argument(
    parser: argparse.ArgumentParser, what: str, default: int = DEFAULT_TRIALS, more: str = ""
) -> None:
    """--trials: ``what`` a trial count is, its ``default`` and ``more`` on it."""
    parser.add_argument(
        "--trials",
        type=int_arg("--trials", 1, MAX_TRIALS),
        default=default,
        metavar="K",
        help=f"{what} (default {default}{more})",
    )


def add_stopping_arguments(parser: argparse.ArgumentParser, max_time_s: float) -> None:
    """The runner's stopping rule: --target-ci (typed as a percent, kept as the runner's
    fraction in ``args.target_ci_fraction``), --min-time and --max-time (s); the defaults
    are the runner's own."""
    parser.add_argument(
        "--target-ci",
        dest="target_ci_fraction",
        type=percent_arg("--target-ci"),
        default=DEFAULT_TARGET_CI,
        metavar="PCT",
        help="stop a trial when the 95%% CI of its median is within +-PCT %% "
        f"(default {DEFAULT_TARGET_CI * 100:g}); run: also add fresh-process trials until the "
        "cross-trial CI is within it",
    )
    parser.add_argument(
        "--min-time",
        type=float_arg("--min-time", high=MAX_TIME_S),
        default=DEFAULT_MIN_TIME_S,
        metavar="S",
        help=f"measure at least S seconds per trial (default {DEFAULT_MIN_TIME_S:g})",
    )
    parser.add_argument(
        "--max-time",
        type=float_arg("--max-time", high=MAX_TIME_S),
        default=max_time_s,
        metavar="S",
        help=f"measure at most S seconds per trial (default {max_time_s:g})",
    )


def add_plan_limit_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-plan",
        type=int_arg("--max-plan", 1, INT64_MAX),
        default=MAX_PLAN_ITEMS,
        metavar="N",
        help=f"refuse a run of more than N measurements (default {MAX_PLAN_ITEMS:,})",
    )


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    """--threshold (percent), --format, --chart and --force of a verdict: compare, regress."""
    parser.add_argument(
        "--threshold",
        type=float_arg("--threshold", low=0.0, high=1000.0, low_open=False),
        default=DEFAULT_THRESHOLD_PCT,
        metavar="PCT",
        help=f"smallest change that matters, in %% (default {DEFAULT_THRESHOLD_PCT:g})",
    )
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the regression chart (DIR/regression.png, .svg, .csv): ratio and "
        "CI per cell, the threshold band, the verdict",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="compare runs of different devices or model files anyway",
    )


def settings_from_args(args: argparse.Namespace, profile: bool = False) -> RunnerSettings:
    """The runner's settings from the stopping flags, checked before anything runs."""
    from harness.measure.plan import RunnerSettings

    if args.min_time > args.max_time:
        raise UserError(
            f"--min-time {args.min_time:g} is above --max-time {args.max_time:g}; raise --max-time"
        )
    target = args.target_ci_fraction  # None: run's --target-ci not given (not adaptive)
    return RunnerSettings(
        target_ci=target if target is not None else DEFAULT_TARGET_CI,
        min_time_s=args.min_time,
        max_time_s=args.max_time,
        profile=profile,
    )
