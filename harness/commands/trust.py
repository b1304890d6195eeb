"""The flags of ``run`` that decide how far its numbers can be trusted, and their wiring.

``--target-ci`` given to ``run`` turns on adaptive trials (``harness.measure.adaptive``):
fresh-process trials are added per cell until the cross-trial CI is within the target,
up to ``--max-trials`` per cell and ``--budget`` trials in all. ``--cooldown`` waits before
every trial (``results.guards.parse_cooldown``: ``45C`` until the hottest zone is below
45 °C, ``30s`` a fixed pause), at most ``--cooldown-max`` seconds (both flags are shared
with layers, regress and predict: ``harness.commands.options``). Guards are sampled
around every trial whatever the flags, by the measurement session
(``harness.measure.session``, ``harness.measure.guard``); the command that would
pin the CPU frequencies is printed after the run (``harness.measure.device_run.pin_note``),
never run.
"""

from __future__ import annotations

import argparse

from harness.commands.options import add_cooldown_arguments
from harness.measure.adaptive import DEFAULT_MAX_TRIALS, AdaptivePlan
from mobilenet.errors import UserError
from mobilenet.validate import INT64_MAX, MAX_TRIALS, int_arg


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    # Given or not decides whether trials are adaptive; not given, the runner's default.
    parser.set_defaults(target_ci_fraction=None)
    parser.add_argument(
        "--max-trials",
        type=int_arg("--max-trials", 1, MAX_TRIALS),
        default=None,
        metavar="K",
        help=f"with --target-ci: at most K trials per cell (default {DEFAULT_MAX_TRIALS})",
    )
    parser.add_argument(
        "--budget",
        type=int_arg("--budget", 1, INT64_MAX),
        default=None,
        metavar="N",
        help="with --target-ci: at most N trials in the whole run (default: no limit "
        "but --max-trials)",
    )
    add_cooldown_arguments(parser)


def adaptive_from_args(args: argparse.Namespace, base_trials: int) -> AdaptivePlan | None:
    """The adaptive plan the flags ask for; refuses contradictions before anything runs."""
    if args.target_ci_fraction is None:
        for flag, value in (("--max-trials", args.max_trials), ("--budget", args.budget)):
            if value is not None:
                raise UserError(f"{flag} applies to adaptive trials only; give --target-ci PCT too")
        return None
    most = args.max_trials if args.max_trials is not None else max(DEFAULT_MAX_TRIALS, base_trials)
    if most < base_trials:
        raise UserError(f"--max-trials {most} is below --trials {base_trials}; raise --max-trials")
    return AdaptivePlan(target_ci=args.target_ci_fraction, max_trials=most, budget=args.budget)
