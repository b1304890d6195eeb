"""``mnbench report``: charts, a self-contained HTML report and a markdown summary of runs.

A thin layer over ``reports.build.build_report`` (asv's shape: the verb turns arguments into
one library call), given the latency model's frames (``harness.predict.frames``) to draw.
Reports read the store; they never measure or write it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.commands.options import add_db_argument
from mobilenet.errors import UserError
from mobilenet.table import terminal_safe
from mobilenet.validate import label_arg, run_id_arg

EXAMPLES = """examples:
  mnbench report                              the latest run into ./report
  mnbench report --run 3 5 --out /tmp/cmp     runs 3 and 5 overlaid (devices or runtimes)
  mnbench report --run all --db lab.sqlite    every run in lab.sqlite
  mnbench report --campaign nightly           a lab campaign's devices side by side
  mnbench report --accuracy my_top1.csv       your top-1 (columns alpha,resolution,precision,
                                              top1) wins over the TF-Slim reference table

writes into DIR: report.html (one self-contained file: open it offline), summary.md (for a CI
log or a pull-request comment), and per chart NAME.png (NAME.svg for scatter charts) with the
data behind it in NAME.csv.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help=SUMMARIES["report"],
        description="Report on measured runs. It opens with answers (the most accurate cell "
        "for a latency budget, the latency range, separable vs standard, the noise), then "
        "the mission chart (measured latency, memory and FLOPs ratios against 1/N + 1/D_K²), "
        "latency heatmap, latency vs MACs, latency vs ImageNet top-1 with the Pareto "
        "frontier, memory, separable vs standard, the per-layer charts, the results table "
        "and the failed or unstable measurements. Several runs overlay in one chart, one "
        "series each; the last lines printed are the three headline findings.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db_argument(parser)
    parser.add_argument(
        "--run",
        nargs="+",
        type=run_id_arg("--run"),
        default=None,
        metavar="RUN_ID",
        help="run ids or labels, 'latest' (default) or 'all'",
    )
    parser.add_argument(
        "--campaign",
        type=label_arg,
        default=None,
        metavar="NAME",
        help="the runs of this lab campaign, one series per device",
    )
    parser.add_argument(
        "--accuracy",
        type=Path,
        default=None,
        metavar="CSV",
        help="your top-1 accuracy per cell (columns alpha,resolution,precision,"
        "top1 in percent); wins over the bundled TF-Slim table",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("report"),
        metavar="DIR",
        help="output directory, created if needed (default ./report)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.predict.frames import report_frames
    from reports.build import build_report

    if args.campaign is not None and args.run is not None:
        raise UserError("--campaign selects its own runs; give --campaign or --run, not both")
    files = build_report(
        args.db,
        args.run or ["latest"],
        args.accuracy,
        args.out,
        campaign=args.campaign,
        predictions=report_frames,
    )
    for title, reason in files.skipped:
        print(f"no chart for {title}: {reason}", file=sys.stderr)
    print(
        f"wrote {len(files.images)} images, {len(files.data)} CSV files and {files.summary}",
        file=sys.stderr,
    )
    for line in files.answers.headline():
        print(terminal_safe(line), file=sys.stderr)
    print(files.html)
    return EXIT_OK
