"""``mnbench db copy SRC DST``: copy runs between results stores (SQLite file ↔ PostgreSQL).

A thin adapter over ``results.copy``: the source is opened read-only, the destination is
created or upgraded; copying again refreshes the runs it copied before (idempotent).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from mobilenet.errors import UserError
from mobilenet.validate import label_arg, run_id_arg
from results.backend import check_location, is_server_url, parse_location

EXAMPLES = """examples:
  mnbench db copy mnbench.sqlite postgresql://me@lab-db:5432/mnbench
  mnbench db copy postgresql://me@lab-db/mnbench mine.sqlite --campaign nightly
  mnbench db copy mnbench.sqlite lab.sqlite --run 3 latest
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "db",
        help=SUMMARIES["db"],
        description="Copy runs, with their models, measurements and bursts, from one store "
        "to another. A run copied before is refreshed, never duplicated. Passwords come from "
        "~/.pgpass or PGPASSWORD, never from the URL.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("copy",))
    parser.add_argument("source", type=parse_location, metavar="SRC", help="file or URL")
    parser.add_argument("target", type=parse_location, metavar="DST", help="file or URL")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--run",
        nargs="+",
        type=run_id_arg("--run"),
        metavar="RUN_ID|LABEL|latest",
        help="only these runs (default: every run)",
    )
    which.add_argument("--campaign", type=label_arg, help="only the runs of this lab campaign")


def _same_file(source: Path | str, target: Path | str) -> bool:
    """Whether two file locations name one file (``a.sqlite`` and ``./a.sqlite``)."""
    if is_server_url(source) or is_server_url(target):
        return False
    try:
        return os.path.samefile(source, target)
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    from results.copy import campaign_runs, copy_runs
    from results.store import Store

    check_location(args.source, "SRC")
    check_location(args.target, "DST")
    if str(args.source) == str(args.target) or _same_file(args.source, args.target):
        raise UserError("SRC and DST are the same store; give two different ones")
    with Store.open(args.source, readonly=True) as source:
        if args.run:
            run_ids = [source.resolve_run_id(spec) for spec in args.run]
        elif args.campaign:
            run_ids = campaign_runs(source, args.campaign)
            if not run_ids:
                raise UserError(f"no campaign {args.campaign!r} in {source.path}")
        else:
            run_ids = [run.id for run in source.list_runs()]
        with Store.open(args.target) as target:
            copied = copy_runs(source, target, list(dict.fromkeys(run_ids)))
            for item in copied:
                verb = "copied" if item.created else "refreshed"
                print(
                    f"run {item.source_id} -> run {item.target_id} in {target.path}: {verb}, "
                    f"{item.measurements} measurements",
                    file=sys.stderr,
                )
    return EXIT_OK
