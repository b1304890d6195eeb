"""The flags of ``run`` that decide how far its numbers can be trusted, and their wiring.

``--target-ci`` given to ``run`` turns on adaptive trials (``harness.measure.adaptive``):
fresh-process trials are added per cell until the cross-trial CI is within the target,
up to ``--max-trials`` per cell and ``--budget`` trials in all. ``--cooldown`` waits before
every trial (``results.guards.parse_cooldown``: ``45C`` until the hottest zone is below
45 °C, ``30s`` a fixed pause), at most ``--cooldown-max`` seconds (both flags are shared
with layers, regress and predict: ``harness.commands.options``). Guards are sampled
around every trial whatever the flags, by the measurement session
(``harness.measure.session``, ``harness.measure.guard``); the command that would
pin the CPU frequencies is printed after the run (``pin_note``), never run.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.commands.options import add_cooldown_arguments
from harness.measure.adaptive import DEFAULT_MAX_TRIALS, AdaptivePlan
from mobilenet.errors import UserError
from mobilenet.validate import INT64_MAX, MAX_TRIALS, int_arg
from results.guards import CooldownPolicy

if TYPE_CHECKING:
    import pandas as pd


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


def check_budget(adaptive: AdaptivePlan | None, base_items: int) -> None:
    if adaptive and adaptive.budget is not None and adaptive.budget < base_items:
        raise UserError(
            f"--budget {adaptive.budget} is below the {base_items} trials of the base plan "
            "(cells x --trials); raise --budget or lower --trials"
        )


def cooldown_from_config(run_id: int, value: object) -> CooldownPolicy | None:
    if value is None:
        return None
    bad = UserError(
        f"run {run_id}: the stored cool-down setting is not valid (a damaged or crafted "
        "database); start a new run instead of resuming"
    )
    if not isinstance(value, Mapping):
        raise bad
    numbers = {k: value.get(k) for k in ("below_c", "fixed_s", "max_wait_s")}
    for key, number in numbers.items():
        if number is None and key != "max_wait_s":
            continue
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise bad
        if not 0 <= number <= 86400:
            raise bad
    below, fixed, most = numbers["below_c"], numbers["fixed_s"], numbers["max_wait_s"]
    if (below is None) == (fixed is None):
        raise bad
    return CooldownPolicy(
        below_c=float(below) if below is not None else None,
        fixed_s=float(fixed) if fixed is not None else None,
        max_wait_s=float(most),  # type: ignore[arg-type]
    )


def pin_note(frame: pd.DataFrame) -> list[str]:
    """Lines for stderr after a run: how the frequencies stood and, when they were not
    pinned, the exact command that would pin them (mnbench never runs it)."""
    if frame.empty or "pin_command" not in frame.columns:
        return []
    states = [str(v) for v in frame["device_state"] if isinstance(v, str) and v]
    commands = [str(v) for v in frame["pin_command"] if isinstance(v, str) and v]
    if not commands:
        return []
    return [
        f"note: {states[0] if states else 'CPU frequencies not pinned'}; numbers move with the "
        "governor. To pin the frequencies (root; mnbench never does):",
        f"  {commands[0]}",
    ]
