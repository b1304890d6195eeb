"""The markdown summary: a few lines fit for a CI log or a pull-request comment.

The report's answers first (``reports.answers``), then the runs with their device and
runtime, one compact table of median latency per model (a column per run and
configuration), and the count of failed and unreliable results. The trust lines
(``reports.trust``: stability, guards, unreliable cells and why) come first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mobilenet.table import markdown_text
from reports.answers import Answers, budget_text, picks_by_series
from reports.charts import Chart, cell_text, config_text, measured, series_labels
from reports.trust import markdown_lines, trust_of


def _cell(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}"


def _sort_key(alpha: float, resolution: float, name: str) -> tuple[float, float, str]:
    return (
        -alpha if not math.isnan(alpha) else 1.0,
        -resolution if not math.isnan(resolution) else 1.0,
        name,
    )


def _answer_lines(answers: Answers) -> list[str]:
    lines: list[str] = []
    for series, picks in picks_by_series(answers.picks).items():
        lines.append(
            f"- For a latency budget ({markdown_text(series)}), the most accurate cell that fits:"
        )
        lines += [
            f"  - {markdown_text(budget_text(pick, picks[i + 1] if i + 1 < len(picks) else None))}"
            for i, pick in enumerate(picks)
        ]
    if answers.latency_range:
        lines.append(f"- Latency range: {markdown_text(answers.latency_range)}")
    if answers.separable_standard:
        lines.append(f"- Separable vs standard: {markdown_text(answers.separable_standard)}.")
    if answers.noise:
        lines.append(f"- Noise: {markdown_text(answers.noise)}.")
    return [*lines, ""] if lines else []


def render_summary(
    runs: pd.DataFrame,
    results: pd.DataFrame,
    charts: Sequence[Chart],
    *,
    harness_version: str,
    answers: Answers | None = None,
    trust_results: pd.DataFrame | None = None,
) -> str:
    """Markdown text ending in a newline; the trust lines judge ``trust_results`` when
    given (the results with the layer probes), else ``results``."""
    labels = series_labels(runs)
    lines = ["## mnbench report", ""]
    lines += markdown_lines(trust_of(trust_results if trust_results is not None else results))
    if answers is not None:
        lines += _answer_lines(answers)
    for run in runs.to_dict("records"):
        run_id = int(run["run_id"])
        created = str(run.get("created_at") or "")[:19].replace("T", " ")
        lines.append(
            f"- run {markdown_text(labels[run_id])} "
            f"({markdown_text(run.get('device_kind') or 'device')}), "
            f"harness {markdown_text(run.get('harness_version') or '?')}, "
            f"{markdown_text(created)}"
        )
    lines.append("")
    frame = measured(results)
    columns: list[tuple[int, str, str, float, float]] = sorted(
        {
            (int(r), str(v), str(p), float(k), float(t))
            for r, v, p, k, t in zip(
                frame["run_id"],
                frame["variant"],
                frame["precision"],
                frame["kernel"],
                frame["threads"],
                strict=True,
            )
        },
        key=lambda c: (
            c[0],
            c[1],
            c[2],
            0 if math.isnan(c[3]) else c[3],
            0 if math.isnan(c[4]) else c[4],
        ),
    )
    if columns:
        # one row per cell (or foreign model name), one column per run and configuration
        rows: dict[tuple[float, float, str], dict[int, float]] = {}
        for row in frame.to_dict("records"):
            alpha, resolution = float(row["alpha"]), float(row["resolution"])
            grid = not (math.isnan(alpha) or math.isnan(resolution))
            key = (alpha, resolution, "" if grid else str(row["name"]))
            column = columns.index(
                (
                    int(row["run_id"]),
                    str(row["variant"]),
                    str(row["precision"]),
                    float(row["kernel"]),
                    float(row["threads"]),
                )
            )
            rows.setdefault(key, {})[column] = float(row["p50_ms"])
        headers = [
            markdown_text(f"{labels.get(c[0], f'#{c[0]}')} {config_text(c[1], c[2], c[3], c[4])}")
            for c in columns
        ]
        lines.append("Median latency (ms) per model:")
        lines.append("")
        lines.append("| model (α/resolution) | " + " | ".join(headers) + " |")
        lines.append("|---|" + "---:|" * len(columns))
        for key in sorted(rows, key=lambda k: _sort_key(*k)):
            alpha, resolution, name = key
            label = markdown_text(name) if name else cell_text(alpha, resolution)
            values = rows[key]
            lines.append(
                f"| {label} | "
                + " | ".join(_cell(values.get(i, math.nan)) for i in range(len(columns)))
                + " |"
            )
        lines.append("")
    else:
        lines += ["No result has a median latency.", ""]
    status = results["status"].astype(str) if "status" in results.columns else pd.Series(dtype=str)
    flags = (
        results["flags"].fillna("").astype(str)
        if "flags" in results.columns
        else pd.Series(dtype=str)
    )
    failed = int((status == "failed").sum())
    partial = int((status == "partial").sum())
    unstable = int((flags != "").sum())
    lines.append(
        f"Results: {len(results)}; failed: {failed}; partly failed: {partial}; "
        f"unreliable (flagged): {unstable}."
    )
    skipped = [c for c in charts if not c.has_image]
    if skipped:
        lines.append(
            "Charts without data: "
            + "; ".join(f"{c.title} ({markdown_text(c.missing)}; run `{c.hint}`)" for c in skipped)
            + "."
        )
    lines.append(f"Full report: report.html (mnbench {harness_version}).")
    return "\n".join(lines) + "\n"
