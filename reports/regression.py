"""The regression chart: ratio candidate/baseline and its CI per cell, the ±threshold band,
the verdict by colour and in the label; written by ``mnbench compare``/``regress --chart``.

One horizontal row per cell (log ratio axis, 1 in the middle), a shaded band for
``[1/(1+threshold), 1+threshold]``, the CI as a bar and the ratio as a dot coloured by
verdict (Okabe–Ito: slower vermillion, faster blue, unchanged green, inconclusive grey).
``<dir>/regression.png``, ``.svg`` and ``.csv`` (the comparison's cells) are written, and
``.mnbench-chart.json`` records their hashes: a later chart replaces only those files.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from mobilenet.validate import creatable_dir
from reports.build import write_atomic
from reports.charts import OKABE_ITO, Chart, no_chart
from reports.charts.style import plain_log_ticks, render
from reports.errors import ReportError
from reports.outputs import Owned, digest, may_remove, may_replace, read_owned, write_manifest

if TYPE_CHECKING:
    from results.compare import Comparison

VERDICT_COLOURS = {
    "slower": OKABE_ITO[1],
    "faster": OKABE_ITO[0],
    "unchanged": OKABE_ITO[2],
    "inconclusive": "#777777",
}


def regression_chart(comparison: Comparison) -> Chart:
    from results.compare import comparison_records

    title = (
        f"Run {comparison.candidate_run} vs baseline run {comparison.baseline_run}: "
        f"ratio and CI per cell (threshold ±{100 * comparison.threshold:g} %)"
    )
    records = comparison_records(comparison)
    if not records:
        return no_chart(
            "regression",
            title,
            "no cell was measured in both runs",
            "mnbench regress --baseline A --candidate B",
        )
    data = pd.DataFrame(records)
    height = 1.2 + 0.45 * len(records)
    fig = Figure(figsize=(8.0, height), layout="constrained")
    ax = fig.add_subplot()
    upper = 1 + comparison.threshold
    ax.axvspan(1 / upper, upper, color="#dddddd", zorder=0, label="±threshold")
    ax.axvline(1.0, color="#444444", linewidth=0.8, zorder=1)
    labels = []
    lows, highs = [], []
    for row, record in enumerate(records):
        colour = VERDICT_COLOURS[str(record["verdict"])]
        low, high, ratio = (_number(record[k]) for k in ("ci_low", "ci_high", "ratio"))
        high_drawn = high if math.isfinite(high) else ratio * 4
        ax.plot([low, high_drawn], [row, row], color=colour, linewidth=3, zorder=2)
        ax.plot([ratio], [row], "o", color=colour, markersize=7, zorder=3)
        threads = f" t{record['threads']}" if record["threads"] is not None else ""
        labels.append(f"{record['name']}{threads}\n{record['verdict']}")
        lows.append(low)
        highs.append(high_drawn)
    ax.set_yticks(range(len(records)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    span = max(upper * 1.05, *highs, 1 / min(*lows, 1 / upper) * 1.05)
    ax.set_xlim(1 / span, span)
    plain_log_ticks(ax)
    ax.set_xlabel("ratio candidate / baseline (log scale; > 1 = slower)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", linewidth=0.3)
    png, svg = render(fig, svg=True)
    counts = ", ".join(
        f"{comparison.count(v)} {v}" for v in ("slower", "faster", "unchanged", "inconclusive")
    )
    reading = (
        f"{len(records)} cells: {counts}. A cell is slower or faster only when its whole CI "
        "lies beyond the shaded band and the change is significant after Benjamini-Hochberg; "
        "unchanged when the whole CI lies inside it."
    )
    return Chart("regression", title, reading, data, png, svg)


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


CHART_MANIFEST = ".mnbench-chart.json"
"""Lists the regression chart's files in its directory, with their hashes: the only files a
later chart replaces or removes."""
CHART_FILES = re.compile(r"regression\.(png|svg|csv)")


def check_chart_dir(out_dir: Path, protected: Sequence[Path] = ()) -> Owned:
    """Refuse a ``--chart`` directory before any work: a path that is not (and cannot become)
    a writable directory, or one whose regression files mnbench cannot prove it wrote."""
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ReportError(f"--chart {out_dir} exists and is not a directory; give a directory")
    creatable_dir(out_dir, "--chart")
    owned = read_owned(out_dir, CHART_MANIFEST, CHART_FILES, flag="--chart", protected=protected)
    owned = owned if owned is not None else Owned(protected=tuple(protected))
    for suffix in (".png", ".svg", ".csv"):
        name = f"regression{suffix}"
        if not may_replace(out_dir, owned, name, b""):
            raise ReportError(
                f"{out_dir / name} was not written by mnbench and would be replaced; move it "
                "away or give --chart another directory"
            )
    return owned


def write_regression_chart(
    comparison: Comparison, out_dir: Path, protected: Sequence[Path] = ()
) -> list[Path]:
    """Write regression.png/.svg/.csv into ``out_dir``; the paths written. Only files an
    earlier chart provably wrote are replaced or removed (``reports.outputs``)."""
    owned = check_chart_dir(out_dir, protected)
    chart = regression_chart(comparison)
    payloads = {
        "regression.png": chart.png,
        "regression.svg": chart.svg,
        "regression.csv": chart.data.to_csv(index=False).encode() if len(chart.data) else None,
    }
    contents = {name: payload for name, payload in payloads.items() if payload is not None}
    hashes = {name: digest(payload) for name, payload in contents.items()}
    written = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        interim = {n: {*owned.hashes.get(n, ()), *([hashes[n]] if n in hashes else [])}
                   for n in {*owned.hashes, *hashes}}  # fmt: skip
        write_manifest(out_dir, CHART_MANIFEST, interim)
        for name, payload in contents.items():
            path = out_dir / name
            write_atomic(path, payload)
            written.append(path)
        for stale in sorted(owned.names - set(contents)):
            if may_remove(out_dir, owned, stale):
                (out_dir / stale).unlink(missing_ok=True)
        write_manifest(out_dir, CHART_MANIFEST, {n: [h] for n, h in hashes.items()})
    except OSError as exc:
        raise ReportError(
            f"cannot write the chart into {out_dir} ({exc.strerror or exc}); give --chart "
            "a writable directory"
        ) from None
    return written
