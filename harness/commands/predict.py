"""``mnbench predict``: a kernel-level latency model per device, fitted from a few minutes of
probes (``harness.predict``), and what it says before anything else is measured.

The page: the flags, one ``PredictRequest`` built from them, one call
(``harness.predict.request.serve``), and the printing: the model, then the predictions (per
block with ``--blocks``), the variants that fit ``--budget-ms`` with their top-1, the Pareto
front and the ``mnbench run`` commands, or ``--validate``'s checks and shares.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.commands.measuring import add_trials_argument
from harness.commands.options import (
    add_cooldown_arguments,
    add_cpus_argument,
    add_db_argument,
    add_device_arguments,
    add_models_dir_argument,
    add_quiet_argument,
    add_threads_argument,
    cooldown_from_args,
)
from harness.predict.prediction import BLOCK_HEADERS, HEADERS
from harness.predict.search import SEARCH_HEADERS
from harness.predict.training import FitPlan
from harness.predict.validation import CHECK_HEADERS, HELD_OUT, VALIDATE_TRIALS
from mobilenet.errors import UserError
from mobilenet.validate import float_arg, int_arg

if TYPE_CHECKING:
    from harness.predict.request import PredictRequest
    from harness.predict.search import Budget
    from mobilenet.spec import ModelSpec

PLAN = FitPlan()

EXAMPLES = """examples:
  mnbench predict                                fit (first time, ~5 min) and predict the grid
  mnbench predict --alpha 0.6 --resolution 200 --kernel 5 --blocks
  mnbench predict --budget-ms 5                  variants predicted to fit 5 ms, Pareto front
  mnbench predict --device pi4 --threads 4 --refit --budget-s 600
  mnbench predict --validate --trials 6          measure held-out variants: share within 10 %
  mnbench predict --from-runs 12 13              refit from stored training runs

the model: per kernel (stem, depthwise, pointwise, standard conv, pool, FC, softmax)
time = a + b x MMACs + c x MB moved, all >= 0, fitted by non-negative least squares on
relative error; plus a per-inference overhead. Interval: the 5th-95th percentile of the
cross-validated errors.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.commands.grid import add_grid_arguments

    parser = sub.add_parser(
        "predict",
        help=SUMMARIES["predict"],
        description="Fit (once per device x runtime x threads x precision, or with --refit) a "
        "kernel-level latency model from sampled layer probes and a few whole models, store "
        "it, and predict any alpha, resolution, D_K and variant: whole-model latency with an "
        "interval, per block, the variants that fit a latency budget, and a validation "
        "against held-out measurements.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_arguments(parser)
    add_grid_arguments(parser)
    add_threads_argument(parser, several=False)
    add_cpus_argument(parser)
    parser.add_argument("--refit", action="store_true", help="measure new probes and refit")
    parser.add_argument(
        "--from-runs",
        nargs="+",
        type=int,
        metavar="RUN_ID",
        help="refit from these stored runs (measures nothing)",
    )
    parser.add_argument(
        "--budget-s",
        type=float_arg("--budget-s"),
        default=PLAN.budget_s,
        metavar="S",
        help=f"seconds of measuring for a fit (default {PLAN.budget_s:g})",
    )
    parser.add_argument(
        "--probes",
        type=int_arg("--probes"),
        default=PLAN.probes,
        metavar="N",
        help=f"sampled probes of the first round (default {PLAN.probes})",
    )
    parser.add_argument(
        "--seed", type=int, default=PLAN.seed, help=f"sampling seed (default {PLAN.seed})"
    )
    parser.add_argument(
        "--budget-ms",
        type=float_arg("--budget-ms"),
        metavar="B",
        help="list the variants predicted to run within B ms, with top-1 and the Pareto front",
    )
    parser.add_argument("--blocks", action="store_true", help="also print per-block times")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="measure held-out variants (default 17 off-grid ones, or the grid flags') and "
        "print the share of predictions within 5 and 10 percent",
    )
    add_trials_argument(parser, "fresh-process trials per validated variant", VALIDATE_TRIALS)
    add_cooldown_arguments(parser)
    add_db_argument(parser)
    add_models_dir_argument(parser, "probe and model files")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output (default table)"
    )
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    from harness.predict.request import serve

    outcome = serve(request_from(args))
    model, form = outcome.model, args.format
    search, validation = outcome.search, outcome.validation
    print(model.summary(), file=sys.stderr)
    if validation is not None:
        emit(form, CHECK_HEADERS, [asdict(check) for check in validation.checks])
        print(validation.summary(model.scope.device), file=sys.stderr)
    elif search is not None:
        search.require_fit()
        emit(form, SEARCH_HEADERS, [candidate.record() for candidate in search.candidates])
        print(search.summary(), file=sys.stderr)
        for argv in search.commands:
            print("  " + shlex.join(argv), file=sys.stderr)
    else:
        emit(form, HEADERS, [p.record() for p in outcome.predictions])
        if args.blocks:
            blocks = [record for p in outcome.predictions for record in p.block_records()]
            emit(form, BLOCK_HEADERS, blocks)
    return EXIT_OK


def request_from(args: argparse.Namespace) -> PredictRequest:
    """The request the flags describe, refused in one line where they are wrong."""
    from harness.commands.options import default_models_dir, resolve
    from harness.predict.request import PredictRequest
    from mobilenet.spec import KERNELS
    from results.store import default_db_path

    if list(dict.fromkeys(args.precision or ["fp32"])) != ["fp32"]:
        raise UserError(
            "the latency model covers fp32 only (the probes are fp32); drop --precision"
        )
    for kernel in args.kernel or []:
        if kernel not in KERNELS:
            raise UserError(f"--kernel {kernel} is not allowed: give odd sizes from 1 to 11")
    specs = tuple(_specs(args))
    cooldown = cooldown_from_args(args)  # a malformed --cooldown is refused before the store
    measures = not args.from_runs or args.validate
    return PredictRequest(
        specs=specs,
        db=args.db or default_db_path(),
        models_dir=args.models_dir or default_models_dir(),
        device=resolve(args) if measures else None,
        threads=args.threads,
        cpus=args.cpus,
        cooldown=cooldown,
        refit=args.refit,
        from_runs=tuple(args.from_runs or ()),
        plan=replace(PLAN, budget_s=args.budget_s, probes=args.probes, seed=args.seed),
        validate_trials=args.trials if args.validate else None,
        budget=None if args.budget_ms is None or args.validate else _budget(args),
        quiet=args.quiet,
    )


def _specs(args: argparse.Namespace) -> list[ModelSpec]:
    from harness.commands.grid import specs_from_args
    from harness.predict.search import SEARCH_ALPHAS, SEARCH_RESOLUTIONS
    from mobilenet.spec import ModelSpec

    given = args.alpha or args.resolution or args.rho or args.variant or args.kernel
    if not given and args.validate:
        return [ModelSpec(a, r, v, k) for a, r, v, k in HELD_OUT]  # type: ignore[arg-type]
    if not given and args.budget_ms is not None:
        return [ModelSpec(a, r) for a in SEARCH_ALPHAS for r in SEARCH_RESOLUTIONS]
    return specs_from_args(args)


def _budget(args: argparse.Namespace) -> Budget:
    """The budget with the reports' reference top-1 (fp32) and Pareto front."""
    from harness.predict.search import Budget
    from reports.accuracy import accuracy_table, alpha_key
    from reports.charts import pareto_front

    table = accuracy_table()
    top1 = {
        (alpha_key(a), int(r)): float(t)
        for a, r, p, t in zip(
            table["alpha"], table["resolution"], table["precision"], table["top1"], strict=True
        )
        if p == "fp32"
    }
    return Budget(
        args.budget_ms, args.device, lambda a, r: top1.get((alpha_key(a), r)), pareto_front
    )


def emit(form: str, headers: Sequence[str], records: list[dict[str, Any]]) -> None:
    from mobilenet.table import format_table

    if form == "json":
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    elif form == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else headers)
        writer.writeheader()
        writer.writerows(records)
    else:
        print(format_table(headers, [list(r.values()) for r in records]))
