"""``mnbench compare``: two stored runs, cell by cell, with a statistical verdict."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands import SUMMARIES
from harness.commands.measuring import add_threshold_arguments
from harness.commands.options import add_db_argument
from mobilenet.errors import UserError
from mobilenet.table import format_table, json_text, markdown_text, terminal_safe
from mobilenet.validate import label_arg, run_id_arg
from results.backend import is_server_url
from results.store import Store, default_db_path

if TYPE_CHECKING:
    from results.compare import Comparison

EXAMPLES = """examples:
  mnbench compare 1 2                          baseline run 1, candidate run 2
  mnbench compare 1 latest --threshold 3 --format markdown >> $GITHUB_STEP_SUMMARY
  mnbench compare --campaign nightly pi4 pixel7   two devices of one lab campaign
exit codes: 0 no regression, 1 a cell slower (or failing only in the candidate),
            2 usage or harness error, 3 inconclusive (retry with more --trials)
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "compare",
        help=SUMMARIES["compare"],
        description="For each cell in both runs (same model file and configuration; cells "
        "are paired by model when the configurations differ): the medians, the ratio "
        "candidate/baseline with a 95%% bootstrap CI, the Mann-Whitney U p-value on "
        "per-trial medians (Benjamini-Hochberg adjusted), and a verdict: slower, faster, "
        "unchanged (CI within +-threshold) or inconclusive. The two runs of an interleaved "
        "`mnbench regress` are analysed paired instead: geometric-mean burst ratios per "
        "process pair, a t CI across pairs, and the sequential rule replayed from the "
        "stored bursts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "baseline",
        type=run_id_arg("BASELINE_RUN"),
        metavar="BASELINE_RUN",
        help="run id, label or 'latest'; with --campaign, a device of the campaign",
    )
    parser.add_argument(
        "candidate",
        type=run_id_arg("CANDIDATE_RUN"),
        metavar="CANDIDATE_RUN",
        help="run id, label or 'latest'; with --campaign, a device of the campaign",
    )
    parser.add_argument(
        "--campaign",
        type=label_arg,
        default=None,
        metavar="NAME",
        help="compare two devices of this lab campaign: BASELINE_RUN and CANDIDATE_RUN "
        "name devices, each meaning its run in the campaign",
    )
    add_threshold_arguments(parser)
    add_db_argument(parser)


def render(comparison: Comparison, fmt: str) -> str:
    from results.compare import comparison_records

    records = comparison_records(comparison)
    if fmt == "json":
        return json_text(
            {
                "baseline_run": comparison.baseline_run,
                "candidate_run": comparison.candidate_run,
                "threshold": comparison.threshold,
                "geometric_mean_ratio": comparison.geometric_mean_ratio,
                "counts": {
                    v: comparison.count(v)
                    for v in ("slower", "faster", "unchanged", "inconclusive")
                },
                "cells": records,
                "failed": [f.__dict__ for f in comparison.failed],
                "missing": list(comparison.missing),
                "warnings": list(comparison.warnings),
            }
        )
    paired = any(r["design"] == "pairs" for r in records)
    headers = [
        "model",
        "threads",
        "baseline ms",
        "candidate ms",
        "ratio",
        "CI" if paired else "95% CI",
        "p (BH)",
        "verdict",
    ]
    rows: list[list[object]] = [
        [
            r["name"],
            r["threads"],
            r["baseline_ms"],
            r["candidate_ms"],
            f"{r['ratio']:.3f}",
            f"{r['ci_low']:.3f}-{r['ci_high']:.3f}",
            f"{r['p_adjusted']:.3g}",
            _verdict_text(r),
        ]
        for r in records
    ]
    gm = comparison.geometric_mean_ratio
    counts = ", ".join(
        f"{comparison.count(v)} {v}" for v in ("slower", "faster", "unchanged", "inconclusive")
    )
    footer = [f"geometric mean ratio {gm:.3f}" if gm else "no comparable cells", counts]
    footer += [
        f"fails only in the candidate: {f.name} ({f.reason})"
        for f in comparison.failed
        if f.side == "candidate"
    ]
    footer += [
        f"fails in the {f.side}: {f.name} ({f.reason})"
        for f in comparison.failed
        if f.side != "candidate"
    ]
    footer += [f"not compared: {m}" for m in comparison.missing]
    if paired:
        footer.append(
            "paired design: ratio = geometric mean of burst ratios over process pairs; the CI "
            "is at the level spent at the cell's last look (alpha 0.05 over all looks); "
            "sd = log-ratio sd within a pair (one burst pair) / between pairs"
        )
    footer += [f"warning: {w}" for w in comparison.warnings]
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += [
            "| "
            + " | ".join(markdown_text(c) if not isinstance(c, float) else f"{c:.3f}" for c in row)
            + " |"
            for row in rows
        ]
        title = (
            f"### mnbench: run {comparison.candidate_run} vs baseline run "
            f"{comparison.baseline_run} (threshold ±{100 * comparison.threshold:g} %)"
        )
        return "\n".join([title, "", *lines, "", *[f"- {markdown_text(f)}" for f in footer]])
    return "\n".join([format_table(headers, rows), "", *map(terminal_safe, footer)])


def run(args: argparse.Namespace) -> int:
    from harness.commands.exits import comparison_exit_code
    from results.compare import compare_runs

    location = args.db or default_db_path()
    protected = chart_guard(args.chart, location)
    with Store.open(location, readonly=True) as store:
        if args.campaign is not None:
            base, cand = campaign_pair(store, args.campaign, args.baseline, args.candidate)
        else:
            base = store.resolve_run_id(args.baseline)
            cand = store.resolve_run_id(args.candidate)
        # A campaign's devices are compared on purpose: no --force needed for that.
        force = args.force or args.campaign is not None
        comparison = compare_runs(store, base, cand, args.threshold / 100, force=force)
    if not comparison.cells and not comparison.failed:
        why = comparison.warnings[0] if comparison.warnings else ""
        raise UserError(
            f"runs {base} and {cand} have no cell in common (the same model file and "
            f"configuration measured in both){'; ' + why if why else ''}; compare runs of "
            "the same models and thread counts"
        )
    write_chart(comparison, args.chart, protected)
    print(render(comparison, args.format))
    return comparison_exit_code(comparison)


def campaign_pair(store: Store, campaign: str, baseline: str, candidate: str) -> tuple[int, int]:
    """The runs of two devices of a campaign (device names, or run ids of the campaign)."""
    run_ids = store.campaign_run_ids(campaign)
    by_device: dict[str, int] = {}
    for run_id in run_ids:  # oldest first: a device planned twice keeps its newest run
        by_device[store.get_run(run_id).device] = run_id
    chosen: list[int] = []
    for name in (baseline, candidate):
        text = str(name).strip()
        if text in by_device:
            chosen.append(by_device[text])
        elif text.isdigit() and int(text) in run_ids:
            chosen.append(int(text))
        else:
            raise UserError(
                f"campaign {campaign!r} has no device (or run) {text!r}; its devices: "
                f"{', '.join(by_device)}"
            )
    if chosen[0] == chosen[1]:
        raise UserError("give two different devices of the campaign to compare")
    return chosen[0], chosen[1]


def chart_guard(out_dir: Path | None, location: Path | str) -> tuple[Path, ...]:
    """Before any work: refuse a ``--chart`` directory the chart could not be written into
    without clobbering a file; the files the chart must never touch (the database)."""
    protected = () if is_server_url(location) else (Path(location),)
    if out_dir is not None:
        from reports.regression import check_chart_dir

        check_chart_dir(out_dir, protected)
    return protected


def write_chart(
    comparison: Comparison, out_dir: Path | None, protected: tuple[Path, ...] = ()
) -> None:
    """``--chart DIR``: the regression chart (reports/regression.py), paths on stderr."""
    if out_dir is None:
        return
    from reports.regression import write_regression_chart

    for path in write_regression_chart(comparison, out_dir, protected):
        print(f"wrote {path}", file=sys.stderr)


def _verdict_text(record: Mapping[str, object]) -> str:
    note = str(record["note"])
    within, between = record.get("within_sd"), record.get("between_sd")
    if isinstance(within, float) and isinstance(between, float):
        note += f", sd {within:.3f}/{between:.3f}"
    return f"{record['verdict']} ({note})" if note else str(record["verdict"])
