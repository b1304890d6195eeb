"""``mnbench runtime``: add, list and remove isolated onnxruntime environments."""

from __future__ import annotations

import argparse
import sys

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.measure.runtimes import (
    ensure_runtime,
    installed_versions,
    list_runtimes,
    remove_runtime,
)
from mobilenet.table import format_table

EXAMPLES = """examples:
  mnbench runtime add onnxruntime==1.30.0     a cached venv with that release and numpy
  mnbench runtime list
  mnbench runtime remove onnxruntime==1.30.0
  mnbench regress --baseline onnxruntime==1.30.0 --candidate onnxruntime==1.31.1
                                              A/B two releases on this CPU
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "runtime",
        help=SUMMARIES["runtime"],
        description="Runtime environments live in ~/.cache/mnbench/runtimes (or "
        "$MNBENCH_CACHE/runtimes), outside any repository, and are reused across runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("add", "list", "remove"))
    parser.add_argument("spec", nargs="*", metavar="onnxruntime==X.Y.Z")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = []
        for runtime in list_runtimes():
            versions = installed_versions(runtime)
            rows.append(
                [
                    runtime.spec,
                    "ok" if runtime.complete else "broken (rebuilt on add)",
                    versions.get("numpy", "-"),
                    str(runtime.path),
                ]
            )
        print(format_table(["runtime", "state", "numpy", "path"], rows))
        return EXIT_OK
    if not args.spec:
        from mobilenet.errors import UserError

        raise UserError(f"`mnbench runtime {args.action}` needs a spec such as onnxruntime==1.30.0")
    for spec in args.spec:
        if args.action == "add":
            runtime = ensure_runtime(spec)
            print(f"{runtime.spec}: {runtime.python}", file=sys.stderr)
        else:
            runtime = remove_runtime(spec)
            print(f"removed {runtime.spec}", file=sys.stderr)
    return EXIT_OK
