"""The ``mnbench results`` verb: print runs' results from the store as a table, CSV or JSON.

A page over ``results.listing``, which selects the runs and formats them; the store
aggregates. pandas is imported only when the verb runs, so ``mnbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final, cast

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.commands.options import add_db_argument
from mobilenet.validate import label_arg, run_id_arg
from results.listing import FORMATS, OutputFormat, format_selection, select_runs

EXAMPLES: Final = """\
examples:
  mnbench results                          the latest run as a table
  mnbench results --run 3                  run 3
  mnbench results --run all --format csv   every run, one CSV row per model x configuration
  mnbench results --format json > r.json   the latest run as a list of JSON records
  mnbench results --list                   the runs in the database
  mnbench results --campaign nightly       every device's run of a lab campaign
  MNBENCH_DB=~/bench/pi5.sqlite mnbench results   another database (or --db PATH)
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "results",
        help=SUMMARIES["results"],
        description="Show one row per model x configuration of a run: the median latency\n"
        "and its 95% CI across fresh-process trials (a t-interval on log trial medians;\n"
        "none below 3 trials), the between-trial spread, the within-process CI (pooled\n"
        "samples, secondary), p90, p99, load and first-inference time, peak RSS, MACs and\n"
        "the flags that say why a cell is unreliable.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db_argument(parser)
    parser.add_argument(
        "--run",
        type=run_id_arg("--run"),
        metavar="RUN",
        default=None,
        help="run id, run label, 'latest' (default) or 'all'",
    )
    parser.add_argument(
        "--campaign",
        type=label_arg,
        default=None,
        metavar="NAME",
        help="the runs of this lab campaign (one per device; `mnbench lab status` names them)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.add_argument("--list", action="store_true", help="list the runs in the database instead")


def run(args: argparse.Namespace) -> int:
    selection = select_runs(args.db, args.run, args.campaign, args.list)
    sys.stdout.write(format_selection(selection, cast(OutputFormat, args.format)))
    return EXIT_OK
