"""The flags several verbs share that say where to measure and with what: the device and
inventory, the results store, the cores and thread counts, the models directory, the label,
the cool-down, and the switches for progress and the device's work directory.

Each flag is defined here once, so it means the same and defaults the same in every verb,
and no command imports another's flags. How long and how often to measure is
``harness.commands.measuring``; which models, ``harness.commands.models``. Only light
modules are imported at the top: building a parser must not load onnx or pandas.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devices.errors import DeviceError
from devices.probe import check_cpu_spec
from mobilenet.errors import UserError
from mobilenet.validate import (
    MAX_THREADS,
    creatable_dir,
    float_arg,
    int_arg,
    label_arg,
    quoted,
)
from results.backend import parse_location

if TYPE_CHECKING:
    from devices.device import DeviceConfig
    from results.guards import CooldownPolicy

DEFAULT_COOLDOWN_MAX_S = 300.0


def cpu_arg(flag: str = "--cpus") -> Callable[[str], str]:
    """An argparse ``type=`` for a CPU selection (kept as text: words need the device)."""

    def parse(text: str) -> str:
        try:
            return check_cpu_spec(text, flag)
        except DeviceError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

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


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=parse_location,
        default=None,
        metavar="PATH|URL",
        help="results database: an SQLite file or postgresql://user@host:port/dbname "
        "(password from ~/.pgpass or PGPASSWORD; default $MNBENCH_DB, else ./mnbench.sqlite)",
    )


def add_threads_argument(
    parser: argparse.ArgumentParser, several: bool = True, default: str = "all cores of the device"
) -> None:
    """--threads: intra-op thread counts (one with ``several`` False); ``default`` says
    what is measured without it."""
    parser.add_argument(
        "--threads",
        nargs="+" if several else None,
        type=int_arg("--threads", 1, MAX_THREADS),
        default=None,
        metavar="N",
        help=f"intra-op {'thread counts' if several else 'threads'} (default: {default})",
    )


def add_cpus_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpus",
        type=cpu_arg(),
        default=None,
        metavar="LIST",
        help="pin to cores: 0,1 or 4-7 or big/little/all or a hex mask",
    )


def add_label_argument(
    parser: argparse.ArgumentParser, default: str | None = None, each: bool = False
) -> None:
    """--label, stored with the run (with ``each``, with each run of a campaign)."""
    what = "stored with each run" if each else "a note stored with the run"
    parser.add_argument(
        "--label",
        type=label_arg,
        default=default,
        help=what + (f" (default {default})" if default else ""),
    )


def add_models_dir_argument(parser: argparse.ArgumentParser, what: str | None = None) -> None:
    """--models-dir; ``what`` goes there (None: no help line)."""
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=None if what is None else f"where {what} go (default ./models)",
    )


def models_dir_from_args(args: argparse.Namespace) -> Path:
    """Where models go: ``--models-dir``, else ``$MNBENCH_MODELS``, else ./models; refused
    before anything is written when it cannot become a directory."""
    given = args.models_dir
    return creatable_dir(given or default_models_dir(), models_dir_flag(given, "--models-dir"))


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_keep_workdir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the runner and model copies on the device (a local run's temporary "
        "work directory) and print where they are; by default they are removed when the "
        "run ends",
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
        policy = parse_cooldown(args.cooldown, max_wait_s=args.cooldown_max)
    except ValueError as error:
        raise UserError(str(error)) from error
    if policy is not None and not math.isfinite(policy.fixed_s or 0.0):
        raise UserError(
            f"--cooldown {quoted(args.cooldown)} is not a finite pause; give seconds such as 30s"
        )
    return policy


def resolve(args: argparse.Namespace) -> DeviceConfig:
    """The device ``--device`` and ``--inventory`` name, checked like the command line."""
    from harness.measure.targets import resolve_target

    accept = getattr(args, "accept_new_host_key", False)
    return resolve_target(args.device, args.inventory, accept)
