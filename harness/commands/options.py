"""The flags several verbs share, with their one set of defaults and units.

``run``, ``layers``, ``regress``, ``compare``, ``predict`` and ``devices`` take their device,
database, measurement, plan-limit and verdict flags from here, so a flag means the same and
defaults the same in every verb, and no command imports another's flags. Units follow the
flag: ``--target-ci`` and ``--threshold`` are percents on the command line; the runner takes
its stopping CI as a fraction, converted once, by ``percent_arg`` as the flag is parsed, and
the stopping defaults are the agent's own (``devices/agent/cli.py``).

Only light modules are imported at the top: building the parser must not load onnx or pandas.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from devices.agent.cli import DEFAULT_MAX_TIME_S, DEFAULT_MIN_TIME_S, DEFAULT_TARGET_CI
from devices.errors import DeviceError
from devices.probe import check_cpu_spec
from mobilenet.errors import UserError
from mobilenet.validate import (
    INT64_MAX,
    MAX_PLAN_ITEMS,
    MAX_TIME_S,
    MAX_TRIALS,
    creatable_dir,
    float_arg,
    int_arg,
)
from results.backend import parse_location

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from devices.device import DeviceConfig
    from harness.measure.plan import ModelEntry, RunnerSettings
    from harness.measure.session import MeasurementSession, Selection
    from results.guards import CooldownPolicy

REGRESS_MAX_TIME_S = 5.0
"""``regress`` times two runtimes per cell, so each trial is capped sooner."""
DEFAULT_THRESHOLD_PCT = 5.0  # results.compare.DEFAULT_THRESHOLD, without importing scipy here
DEFAULT_TRIALS = 3
DEFAULT_COOLDOWN_MAX_S = 300.0


def cpu_arg(flag: str = "--cpus") -> Callable[[str], str]:
    """An argparse ``type=`` for a CPU selection (kept as text: words need the device)."""

    def parse(text: str) -> str:
        try:
            return check_cpu_spec(text, flag)
        except DeviceError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


def percent_arg(flag: str, high_pct: float = 100.0) -> Callable[[str], float]:
    """An argparse ``type=``: a percent typed by the user, as the fraction the library takes
    (the one place a CLI percent becomes a fraction)."""
    parse_pct = float_arg(flag, high=high_pct)

    def parse(text: str) -> float:
        return parse_pct(text) / 100

    return parse


def default_models_dir() -> Path:
    return Path(os.environ.get("MNBENCH_MODELS", "models"))


def models_dir_flag(given: Path | None, flag: str) -> str:
    """How a message names the models directory: the flag, or the variable that set it."""
    return flag if given is not None or "MNBENCH_MODELS" not in os.environ else "$MNBENCH_MODELS"


def add_device_arguments(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--device (several names with ``several``: ``run`` measures them at once) and
    --inventory."""
    parser.add_argument(
        "--device",
        default="local",
        nargs="+" if several else None,
        metavar="NAME|URL",
        help="a name from the inventory, or local, ssh://user@host:port, "
        "adb://SERIAL (default local)"
        + (
            "; several names (or an inventory [groups] name) measure the devices at once, "
            "one run each, grouped as a campaign"
            if several
            else ""
        ),
    )
    add_inventory_argument(parser)


def add_inventory_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory",
        type=Path,
        default=None,
        metavar="TOML",
        help="device inventory (default ./devices.toml, or $MNBENCH_INVENTORY)",
    )


def add_model_file_arguments(parser: argparse.ArgumentParser) -> None:
    """--model FILE... (ONNX files instead of the grid) and --shape, for run and lab plan."""
    parser.add_argument(
        "--model",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="measure these ONNX files instead of the grid",
    )
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="shape of a --model input with symbolic dimensions (else 1)",
    )


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=parse_location,
        default=None,
        metavar="PATH|URL",
        help="results database: an SQLite file or postgresql://user@host:port/dbname "
        "(password from ~/.pgpass or PGPASSWORD; default $MNBENCH_DB, else ./mnbench.sqlite)",
    )


def add_measurement_arguments(parser: argparse.ArgumentParser, trials_what: str) -> None:
    """--trials, --cpus, the runner's stopping rule, --timeout and --max-plan: shared by
    run and layers."""
    parser.add_argument(
        "--trials",
        type=int_arg("--trials", 1, MAX_TRIALS),
        default=DEFAULT_TRIALS,
        metavar="K",
        help=f"{trials_what} (default {DEFAULT_TRIALS})",
    )
    parser.add_argument(
        "--cpus",
        type=cpu_arg(),
        default=None,
        metavar="LIST",
        help="pin to cores: 0,1 or 4-7 or big/little/all or a hex mask",
    )
    add_stopping_arguments(parser, DEFAULT_MAX_TIME_S)
    parser.add_argument(
        "--timeout",
        type=float_arg("--timeout", high=MAX_TIME_S),
        default=None,
        metavar="S",
        help="kill a runner after S seconds (default 4 x max-time + 30)",
    )
    add_plan_limit_argument(parser)


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


def add_cooldown_arguments(parser: argparse.ArgumentParser) -> None:
    """--cooldown and --cooldown-max: the wait before every fresh-process trial (or process
    pair) of run, layers, regress and predict."""
    parser.add_argument(
        "--cooldown",
        default=None,
        metavar="SPEC",
        help="before every trial wait until the hottest thermal zone is below a temperature "
        "(45C) or for a fixed time (30s); waits are recorded",
    )
    parser.add_argument(
        "--cooldown-max",
        type=float_arg("--cooldown-max", high=86400.0),
        default=DEFAULT_COOLDOWN_MAX_S,
        metavar="S",
        help=f"wait at most S seconds per trial (default {DEFAULT_COOLDOWN_MAX_S:g})",
    )


def cooldown_from_args(args: argparse.Namespace) -> CooldownPolicy | None:
    """The ``--cooldown`` policy (None: no wait), refused in one line when malformed."""
    from results.guards import parse_cooldown

    if getattr(args, "cooldown", None) is None:
        return None
    try:
        return parse_cooldown(args.cooldown, max_wait_s=args.cooldown_max)
    except ValueError as error:
        raise UserError(str(error)) from error


def add_plan_limit_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-plan",
        type=int_arg("--max-plan", 1, INT64_MAX),
        default=MAX_PLAN_ITEMS,
        metavar="N",
        help=f"refuse a run of more than N measurements (default {MAX_PLAN_ITEMS:,})",
    )


def add_keep_workdir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the runner and model copies on the device (a local run's temporary "
        "work directory) and print where they are; by default they are removed when the "
        "run ends",
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


def resolve(args: argparse.Namespace) -> DeviceConfig:
    """The device ``--device`` and ``--inventory`` name, checked like the command line."""
    from devices.inventory import resolve_device
    from devices.probe import check_cpu_spec

    explicit = args.inventory or os.environ.get("MNBENCH_INVENTORY")
    device = resolve_device(args.device, Path(explicit) if explicit else None)
    if getattr(args, "accept_new_host_key", False) and device.host:  # only ssh has a host
        device = replace(device, accept_new_host_key=True)
    if device.cpus:
        check_cpu_spec(device.cpus, f"cpus of device {device.name}")
    if device.this_machine and device.workdir:
        creatable_dir(Path(device.workdir).expanduser(), f"the workdir of device {device.name}")
    return device


def resume_hint(run_id: int, args: argparse.Namespace) -> str:
    """``resume with `mnbench run --resume N ...``` with the options that find the same
    database and device again (a device URL that names a program is never read back from
    the database, so it is given again)."""
    from harness.measure.stored import names_program

    argv = ["mnbench", "run", "--resume", str(run_id)]
    if names_program(str(args.device)):
        argv += ["--device", str(args.device)]
    if args.inventory is not None:
        argv += ["--inventory", str(args.inventory)]
    if args.db is not None:
        argv += ["--db", str(args.db)]
    return f"resume with `{shlex.join(argv)}`"


def create_run(
    session: MeasurementSession,
    args: argparse.Namespace,
    models: Sequence[ModelEntry],
    chosen: Selection,
    *,
    models_dir: Path,
    holder: str,
    extra_config: Mapping[str, object] | None = None,
) -> int:
    """A run of ``--trials`` with the ``--device`` and ``--label`` given, whose stop says
    how to ``--resume`` it with the same flags."""
    run_id = session.create_run(
        models,
        chosen,
        args.trials,
        device_arg=args.device,
        models_dir=models_dir,
        label=args.label,
        holder=holder,
        extra_config=extra_config,
    )
    session.set_resume_command(resume_hint(run_id, args))
    return run_id
