"""``mnbench layers``: time each separable block against the standard conv it replaces.

For every block of one α × resolution (and each D_K asked for) the layer probes of
``mobilenet.probes`` — standard conv, depthwise + pointwise, and each part alone — are measured
like whole models (same runner, transports, store and flags as ``mnbench run``), and the
table sets the measured ratio separable / standard beside the paper's 1/N + 1/D_K²
(Howard et al. 2017, eq. 5). Before measuring, ``devices/agent/limits.py`` measures the device's
peak GEMM throughput and copy bandwidth (the roofline's ceilings, Williams et al. 2009)
through the device's backend (``harness.measure.backends``), stored in the run's device
facts under ``limits``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from harness.commands import SUMMARIES
from harness.commands.grid import WEIGHT_COPIES, add_memory_limit_argument, check_model_size
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_device_arguments,
    add_measurement_arguments,
    cooldown_from_args,
    create_run,
    default_models_dir,
    models_dir_flag,
    resolve,
    settings_from_args,
)
from harness.measure.plan import make_plan
from harness.measure.session import MeasurementSession
from harness.measure.sweep import ProgressBar, SweepOutcome, prepare_probes
from mobilenet.architecture import scaled_layers
from mobilenet.errors import UserError
from mobilenet.layers import TABLE_HEADERS, layer_table, table_rows
from mobilenet.probes import BLOCKS, block_probes
from mobilenet.spec import KERNELS, MAX_ALPHA, MAX_RESOLUTION, MIN_RESOLUTION
from mobilenet.table import format_table, json_text, terminal_safe
from mobilenet.validate import (
    MAX_THREADS,
    check_plan_size,
    creatable_dir,
    distinct,
    float_arg,
    int_arg,
    label_arg,
    run_id_arg,
)
from results.store import Store, default_db_path

DEFAULT_LABEL = "layers"

EXAMPLES = """examples:
  mnbench layers                                1.0/224, D_K = 3, on this CPU
  mnbench layers --alpha 0.5 --resolution 160 --kernel 3 5 7
  mnbench layers --device pi4 --threads 1 --trials 5 --format csv > pi4_layers.csv
  mnbench layers --block 1 7 13 --trials 1      three blocks only, one trial
  mnbench layers --from-run latest --format json   the table of a stored run

columns: M, N input and output channels; D_F input size; s stride; pred = 1/N + 1/D_K²
(Howard et al. 2017, eq. 5); MAC ratio = (depthwise + pointwise MACs) / standard MACs;
std/dw/pw/sep ms = median time per inference of the standard conv, the depthwise and
pointwise parts alone and the two together (each with its ReLU6); meas ratio = sep / std;
GFLOP/s = 2 x MACs / time. --format csv|json adds the CI half-widths, MACs, arithmetic
intensities and the device's measured ceilings.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "layers",
        help=SUMMARIES["layers"],
        description="Measure single-layer probes of every depthwise-separable block - the "
        "standard conv, its depthwise + pointwise factorisation and each part - and print "
        "the measured cost ratio beside the predicted 1/N + 1/D_K², with achieved GFLOP/s. "
        "Probes are measured and stored like whole models (one fresh process per trial).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_arguments(parser)
    parser.add_argument(
        "--alpha",
        type=float_arg("--alpha", high=MAX_ALPHA),
        default=1.0,
        metavar="A",
        help="width multiplier (default 1.0)",
    )
    parser.add_argument(
        "--resolution",
        type=int_arg("--resolution", MIN_RESOLUTION, MAX_RESOLUTION),
        default=224,
        metavar="R",
        help="input resolution (default 224)",
    )
    parser.add_argument(
        "--kernel",
        nargs="+",
        type=int_arg("--kernel", 1, max(KERNELS)),
        default=[3],
        metavar="K",
        help="D_K of the depthwise and standard convs, odd, 1-11 (default 3; e.g. 3 5 7)",
    )
    parser.add_argument(
        "--block",
        nargs="+",
        type=int_arg("--block", BLOCKS[0], BLOCKS[-1]),
        default=None,
        metavar="B",
        help=f"only these blocks ({BLOCKS[0]}-{BLOCKS[-1]}; default all)",
    )
    parser.add_argument(
        "--threads",
        type=int_arg("--threads", 1, MAX_THREADS),
        default=None,
        metavar="N",
        help="intra-op threads (default: all cores of the device)",
    )
    add_measurement_arguments(parser, "fresh-process trials per probe")
    add_cooldown_arguments(parser)
    add_memory_limit_argument(parser)
    parser.add_argument(
        "--no-limits",
        action="store_true",
        help="skip the peak GFLOP/s and bandwidth microbenchmark",
    )
    add_db_argument(parser)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the probe models go (default ./models)",
    )
    parser.add_argument(
        "--label",
        type=label_arg,
        default=DEFAULT_LABEL,
        help=f"a note stored with the run (default {DEFAULT_LABEL})",
    )
    parser.add_argument(
        "--from-run",
        type=run_id_arg("--from-run"),
        default=None,
        metavar="RUN_ID|latest",
        help="measure nothing: print the table of a stored layers run",
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output (default table)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    db_path = args.db or default_db_path()
    outcome: SweepOutcome | None = None
    if args.from_run is None:  # everything typed is checked before the store exists
        for kernel in args.kernel:
            if kernel not in KERNELS:
                raise UserError(f"--kernel {kernel} is not allowed: give odd sizes from 1 to 11")
        args.kernel = distinct(args.kernel, "--kernel")
        args.block = distinct(args.block, "--block")
        settings_from_args(args)
        cooldown_from_args(args)
        models_dir = args.models_dir or default_models_dir()
        creatable_dir(models_dir, models_dir_flag(args.models_dir, "--models-dir"))
        for kernel in args.kernel:  # the largest probe is a block's standard conv
            for layer in scaled_layers(args.alpha, args.resolution, "standard", kernel):
                if layer.role == "standard" and layer.block in (args.block or BLOCKS):
                    weights = 4 * layer.weight_count
                    name = f"the block {layer.block} probe with D_K = {kernel}"
                    check_model_size(name, weights, WEIGHT_COPIES * weights, args.max_memory_mib)
        probes = 4 * len(args.kernel) * len(args.block or BLOCKS)
        check_plan_size(probes, None, args.trials, args.max_plan)
        resolve(args)
    with Store.open(db_path, readonly=args.from_run is not None) as store:
        if args.from_run is not None:
            run_id = store.resolve_run_id(args.from_run)
        else:
            outcome = measure(args, store, db_path)
            run_id = outcome.run_id
        table = layer_table(store.probes_frame([run_id]))
    if table.empty:
        raise UserError(f"run {run_id} holds no layer probes; measure them with `mnbench layers`")
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    elif args.format == "json":
        records = json.loads(table.to_json(orient="records"))
        sys.stdout.write(json_text(records, indent=1) + "\n")
    else:
        print(format_table(TABLE_HEADERS, list(table_rows(table))))
        print(_summary(table), file=sys.stderr)
    if outcome is not None and outcome.failures:
        for what, reason in outcome.failures:
            print(terminal_safe(f"failed: {what}: {reason}"), file=sys.stderr)
        return 1
    return 0


def measure(args: argparse.Namespace, store: Store, db_path: Path | str) -> SweepOutcome:
    """Generate the probes, measure the device's limits, run the plan; the outcome."""
    for kernel in args.kernel:
        if kernel not in KERNELS:
            raise UserError(f"--kernel {kernel} is not allowed: give odd sizes from 1 to 11")
    device = resolve(args)
    settings = settings_from_args(args)
    models_dir = args.models_dir or default_models_dir()
    probes = block_probes(
        args.alpha,
        args.resolution,
        tuple(dict.fromkeys(args.kernel)),
        tuple(sorted(set(args.block))) if args.block else BLOCKS,
    )
    models = prepare_probes(probes, models_dir, store)
    with MeasurementSession(
        device, settings, store=store, timeout_s=args.timeout, cooldown=cooldown_from_args(args)
    ) as session:
        chosen = session.select(args.cpus or device.cpus, [args.threads] if args.threads else None)
        if not args.no_limits:
            session.record_limits(chosen.threads[0], chosen.cpus)
        layers = {
            "alpha": args.alpha,
            "resolution": args.resolution,
            "kernels": list(dict.fromkeys(args.kernel)),
            "blocks": sorted({p.block for p in probes}),
        }
        run_id = create_run(
            session,
            args,
            models,
            chosen,
            models_dir=models_dir,
            holder="mnbench layers",
            extra_config={"layers": layers},
        )
        threads = chosen.threads[0]
        print(
            f"run {run_id}: {len(models)} layer probes x {args.trials} trials, "
            f"{threads} thread{'s' if threads != 1 else ''}, on {device.name} -> {store.path}",
            file=sys.stderr,
        )
        plan = make_plan(models, chosen.threads, args.trials, chosen.cpus)
        return session.run(run_id, plan, None if args.quiet else ProgressBar())


def _summary(table: Any) -> str:
    ratios = [
        (float(m), float(p))
        for m, p in zip(table["measured_ratio"], table["predicted_ratio"], strict=True)
        if not math.isnan(float(m))
    ]
    if not ratios:
        return "no block has both a standard and a separable time"
    above = sum(1 for m, p in ratios if m > p)
    worst = max(m / p for m, p in ratios)
    return (
        f"{len(ratios)} blocks: the measured ratio is above the prediction in {above}; "
        f"at worst {worst:.1f}x the predicted 1/N + 1/D_K²"
    )
