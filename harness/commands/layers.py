"""``mnbench layers``: time each separable block against the standard conv it replaces.

For every block of one α × resolution (and each D_K asked for) the layer probes of
``mobilenet.probes`` — standard conv, depthwise + pointwise, and each part alone — are measured
like whole models (same runner, transports, store and flags as ``mnbench run``), and the
table sets the measured ratio separable / standard beside the paper's 1/N + 1/D_K²
(Howard et al. 2017, eq. 5). Before measuring, ``devices/agent/limits.py`` measures the device's
peak GEMM throughput and copy bandwidth (the roofline's ceilings, Williams et al. 2009)
through the device's measuring method (``harness.measure.methods``), stored in the run's device
facts under ``limits``. The measuring is ``harness.measure.layer_run``.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_FINDING, EXIT_OK
from harness.commands.grid import add_memory_limit_argument
from harness.commands.measuring import add_measurement_arguments, settings_from_args
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_device_arguments,
    add_label_argument,
    add_models_dir_argument,
    add_quiet_argument,
    add_threads_argument,
    cooldown_from_args,
    models_dir_from_args,
)
from harness.measure.requests import LayersRequest
from mobilenet.architecture import scaled_layers
from mobilenet.errors import UserError
from mobilenet.footprint import WEIGHT_COPIES, check_model_size
from mobilenet.layers import TABLE_HEADERS, table_rows
from mobilenet.probes import BLOCKS
from mobilenet.spec import KERNELS, MAX_ALPHA, MAX_RESOLUTION, MIN_RESOLUTION
from mobilenet.table import format_table, json_text, terminal_safe
from mobilenet.validate import check_plan_size, distinct, float_arg, int_arg, run_id_arg

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
    add_threads_argument(parser, several=False)
    add_measurement_arguments(parser, "fresh-process trials per probe")
    add_cooldown_arguments(parser)
    add_memory_limit_argument(parser)
    parser.add_argument(
        "--no-limits",
        action="store_true",
        help="skip the peak GFLOP/s and bandwidth microbenchmark",
    )
    add_db_argument(parser)
    add_models_dir_argument(parser, "the probe models")
    add_label_argument(parser, DEFAULT_LABEL)
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
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    from harness.measure.layer_run import measure_layers, ratio_summary, stored_layers

    if args.from_run is not None:
        result = stored_layers(args.db, args.from_run)
    else:
        result = measure_layers(request_from_args(args))
    table = result.table
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    elif args.format == "json":
        records = json.loads(table.to_json(orient="records"))
        sys.stdout.write(json_text(records, indent=1) + "\n")
    else:
        print(format_table(TABLE_HEADERS, list(table_rows(table))))
        print(ratio_summary(table), file=sys.stderr)
    for what, reason in result.failures:
        print(terminal_safe(f"failed: {what}: {reason}"), file=sys.stderr)
    return EXIT_FINDING if result.failures else EXIT_OK


def request_from_args(args: argparse.Namespace) -> LayersRequest:
    """Everything typed, checked before the store exists (the device is resolved first
    thing by the library)."""
    for kernel in args.kernel:
        if kernel not in KERNELS:
            raise UserError(f"--kernel {kernel} is not allowed: give odd sizes from 1 to 11")
    kernels = distinct(args.kernel, "--kernel")
    blocks = distinct(args.block, "--block")
    settings = settings_from_args(args)
    cooldown = cooldown_from_args(args)
    models_dir = models_dir_from_args(args)
    for kernel in kernels or ():  # the largest probe is a block's standard conv
        for layer in scaled_layers(args.alpha, args.resolution, "standard", kernel):
            if layer.role == "standard" and layer.block in (blocks or BLOCKS):
                weights = 4 * layer.weight_count
                name = f"the block {layer.block} probe with D_K = {kernel}"
                check_model_size(name, weights, WEIGHT_COPIES * weights, args.max_memory_mib)
    probes = 4 * len(kernels or ()) * len(blocks or BLOCKS)
    check_plan_size(probes, None, args.trials, args.max_plan)
    return LayersRequest(
        device=args.device,
        alpha=args.alpha,
        resolution=args.resolution,
        kernels=tuple(kernels or ()),
        blocks=tuple(blocks) if blocks else None,
        settings=settings,
        models_dir=models_dir,
        threads=args.threads,
        trials=args.trials,
        cpus=args.cpus,
        timeout_s=args.timeout,
        cooldown=cooldown,
        limits=not args.no_limits,
        label=args.label,
        inventory=args.inventory,
        db=args.db,
        quiet=args.quiet,
    )
