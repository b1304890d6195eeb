"""``mnbench devices``: list known devices, print one's probed facts, check one end to end."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from devices.device import DeviceConfig, open_transport
from devices.facts import probe_device
from devices.transport import Transport, TransportError
from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_FINDING, EXIT_OK
from harness.commands.options import add_inventory_argument, resolve
from harness.measure.targets import inventory_path
from mobilenet.errors import UserError
from mobilenet.table import format_table, json_text

EXAMPLES = """examples:
  mnbench devices                          list the inventory (./devices.toml) and local
  mnbench devices show local               probe and print this machine's facts
  mnbench devices show ssh://pi@board.local --format json
  mnbench devices check pi4                reachable? Python? numpy/onnxruntime? a smoke run
  mnbench devices check pi4 --install      pip-install numpy and onnxruntime on the board
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "devices",
        help=SUMMARIES["devices"],
        description="Devices come from an inventory file (TOML, [devices.NAME] tables) or "
        "URLs: local, ssh://user@host:port, adb://SERIAL.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=("list", "show", "check"), default="list")
    parser.add_argument("name", nargs="?", default=None, metavar="NAME|URL")
    add_inventory_argument(parser)
    parser.add_argument(
        "--install",
        action="store_true",
        help="with check: install numpy and onnxruntime on the device",
    )
    parser.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="SSH: trust and record an unknown host key on first contact",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    from devices.inventory import DEFAULT_INVENTORY, load_inventory

    named = inventory_path(args.inventory)
    inventory = named or DEFAULT_INVENTORY
    if args.action == "list":
        configs = {"local": DeviceConfig(name="local")}
        if inventory.is_file() or (inventory.exists() and named is not None):
            configs.update(load_inventory(inventory))
        rows = [
            [c.name, c.kind, c.address, c.python or "-", c.cpus or "-"] for c in configs.values()
        ]
        if args.format == "json":
            print(
                json.dumps(
                    [
                        dict(zip(("name", "kind", "address", "python", "cpus"), r, strict=True))
                        for r in rows
                    ],
                    indent=2,
                )
            )
        else:
            print(format_table(["device", "kind", "address", "python", "cpus"], rows))
            if not inventory.is_file():
                print(
                    f"(no inventory at {inventory}; see `mnbench devices --help`)", file=sys.stderr
                )
        return EXIT_OK
    if not args.name:
        raise UserError(
            f"`mnbench devices {args.action}` needs a device name or URL, "
            "e.g. `mnbench devices show local`"
        )
    args.device = args.name
    config = resolve(args)
    if args.action == "show":
        with contextlib.closing(open_transport(config)) as transport:
            facts = probe_device(config, transport)
        if args.format == "json":
            print(json_text(facts, sort_keys=True))
        else:
            print(
                format_table(
                    ["fact", "value"], [[k, _short(v)] for k, v in sorted(_flatten(facts).items())]
                )
            )
        return EXIT_OK
    return _check(config, args.install)


def _check(config: DeviceConfig, install: bool) -> int:
    from devices.check import check_device, install_runtime

    if install:
        with contextlib.closing(open_transport(config)) as transport:
            install_runtime(config, transport)
    items = check_device(config, runner_smoke=lambda t: smoke_run(config, t))
    print(
        format_table(
            ["check", "result", "detail"],
            [[i.name, "ok" if i.ok else "FAILED", i.detail] for i in items],
        )
    )
    failed = [i for i in items if not i.ok]
    for item in failed:
        if item.fix:
            print(f"to fix {item.name}: {item.fix}")
    if failed:
        print(f"{config.name}: {len(failed)} check(s) failed", file=sys.stderr)
        return EXIT_FINDING
    print(f"{config.name}: ready to measure", file=sys.stderr)
    return EXIT_OK


def smoke_run(config: DeviceConfig, transport: Transport) -> str | None:
    """A short run of the smallest model through the sweep's own measuring code (the Python
    runner, or onnxruntime_perf_test on a phone); None when it works."""
    from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
    from harness.measure.session import MeasurementSession
    from mobilenet.generator import generate
    from mobilenet.spec import ModelSpec
    from results.store import Store

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "smoke.sqlite") as store:
        spec = ModelSpec(alpha=0.25, resolution=96)
        model = generate(spec, Path(tmp))
        settings = RunnerSettings(fixed=3, min_time_s=0.05, max_time_s=5.0)
        sweep = MeasurementSession(
            config, settings, store=store, timeout_s=300.0, transport=transport
        )
        try:
            status, reason, _ = sweep.measure(
                PlanItem(ModelEntry(spec.name, model.path, model.sha256, spec), 1, 1, None)
            )
        except TransportError as exc:
            return exc.message
    return None if status == "ok" else reason


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:97] + "..."
