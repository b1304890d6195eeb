"""The self-contained HTML report: one file, images as base64 data URIs, inline CSS, no script.

The page opens offline and from an e-mail attachment: nothing in it refers to another file
or host (every ``src`` is a ``data:`` URI, every ``href`` a ``#`` anchor). It leads with
answers, then shows the evidence, then the detail: the summary (``reports.answers``: the
cell for a latency budget, the latency range, the separable/standard finding, the noise),
the table of contents, each chart with its reading (or why it is missing and what to run;
the mission chart first), then the runs, the devices (compact facts, the raw JSON folded
away), the results table and the failed or unstable measurements.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import cast

import pandas as pd

from reports.answers import Answers, picks_by_series
from reports.charts import Chart, config_text
from reports.trust import html_section, trust_of
from results.reliability import FLAG_MEANINGS as RELIABILITY_FLAGS

MIB = 1024.0 * 1024.0
FLAG_MEANINGS: Mapping[str, str] = {
    **RELIABILITY_FLAGS,
    # flags of results stored before the reliability rules; still shown with a meaning
    "far_min": "minimum far below the median",
    "far_max": "maximum far above the median",
}
PREFERRED_FACTS: tuple[str, ...] = (
    "cpu_model",
    "cpu",
    "model",
    "soc",
    "hardware",
    "core_types",
    "cores",
    "cpu_count",
    "physical_cores",
    "logical_cores",
    "threads",
    "max_freq_mhz",
    "min_freq_mhz",
    "cur_freq_mhz",
    "freq_mhz",
    "governor",
    "memory_bytes",
    "mem_total_bytes",
    "memory",
    "os",
    "os_release",
    "kernel",
    "arch",
    "machine",
    "python",
    "android",
)
MAX_LIST_ITEMS = 16
SKIPPED_FACTS: frozenset[str] = frozenset({"getprop"})
"""Facts too long for the header (every Android system property): counted, not listed."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:0 auto;max-width:1180px;padding:1.2em 1.6em 3em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:2px solid #0072B2;padding-bottom:.2em}h3{font-size:1.05em;margin:1em 0 .3em}
.meta{color:#444;margin:.2em 0 1em}
table{border-collapse:collapse;margin:.5em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top;
white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
th{background:#eef4f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde8e1}tr.partial td{background:#fff5d6}
.devices{display:flex;flex-wrap:wrap;gap:1em}.device{border:1px solid #ccc;border-radius:6px;
padding:.4em .9em;flex:1 1 340px}.device table{font-size:.85em}
figure{margin:.6em 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}
.reading{max-width:75em}.files{color:#555;font-size:.85em}
.nodata{border:2px dashed #D55E00;background:#fff8f3;padding:.7em 1em;border-radius:6px}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
nav ul{columns:2;margin:.3em 0}.answers{border-left:4px solid #0072B2;background:#f4f8fb;
padding:.5em 1.1em;margin:.8em 0}.answers li{margin:.25em 0}.trust{border-left:4px solid
#D55E00;background:#fdf6f0;padding:.5em 1.1em;margin:.8em 0}.trust li{margin:.25em 0}
details pre{font-size:.78em;
max-height:24em;overflow:auto;background:#f7f7f7;padding:.5em}.allok{color:#006b4f}.bad{color:#b33c00;font-weight:bold}
"""


def _fmt(value: object, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant figures, NaN/None as an en dash."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number):
            return "–"
        if number == int(number) and abs(number) < 1e15:
            return str(int(number))
        return f"{number:.{digits}g}"
    text = str(value)
    return text if text else "–"


def _num(value: object) -> float:
    if value is None or value is pd.NA:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _fact_value(key: str, value: object) -> str:
    """A device fact as short text; lists are compacted, kHz and byte counts humanized."""
    if isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            return "–"
        if all(item == items[0] for item in items) and len(items) > 1:
            return f"{len(items)} × {_fact_value(key, items[0])}"
        shown = ", ".join(_fact_value(key, item) for item in items[:MAX_LIST_ITEMS])
        more = f", … ({len(items)} in all)" if len(items) > MAX_LIST_ITEMS else ""
        return shown + more
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is not None and key.endswith("_khz"):
        return f"{float(number) / 1000:.0f} MHz"
    if number is not None and key.endswith("_bytes"):
        if number >= 1024**3:
            return f"{number / 1024**3:.1f} GiB"
        if number >= MIB:
            return f"{number / MIB:.0f} MiB"
    return _fmt(value, digits=6)


def flatten_facts(facts: object, prefix: str = "") -> list[tuple[str, str]]:
    """Device facts as (key, text) rows: nested dicts flattened as ``a.b``, lists of records
    (per-core frequencies, thermal zones) as one row per field; anything that is not a dict
    (missing facts, a JSON string, None) gives what can be shown of it."""
    if facts is None or (isinstance(facts, float) and math.isnan(facts)):
        return []
    if not isinstance(facts, Mapping):
        return [(prefix or "facts", str(facts))]
    rows: list[tuple[str, str]] = []
    for key, value in facts.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if str(key) in SKIPPED_FACTS and isinstance(value, Mapping):
            rows.append((name, f"{len(value)} entries recorded (in the database, not shown)"))
        elif isinstance(value, Mapping):
            rows.extend(flatten_facts(value, name))
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(item, Mapping) for item in value)
        ):
            fields: list[str] = []
            for item in value:
                fields.extend(str(f) for f in item if str(f) not in fields)
            for field_name in fields:
                values = [item.get(field_name) for item in value]
                rows.append((f"{name}[].{field_name}", _fact_value(field_name, values)))
        else:
            rows.append((name, _fact_value(str(key), value)))
    order = {key: index for index, key in enumerate(PREFERRED_FACTS)}
    return sorted(
        rows, key=lambda kv: (order.get(kv[0].split(".")[0].split("[")[0], len(order)), kv[0])
    )


CORE_LISTS: tuple[str, ...] = ("cores", "cpus")
"""Facts holding one record per core: shown as one line per distinct kind of core."""
REDUNDANT_FACTS: frozenset[str] = frozenset(
    {
        "core_types",  # the cores line says it
        "device.name",
        "device.kind",  # the box's title says both
        "psutil.memory_total_bytes",
        "psutil.memory_available_bytes",
        "psutil.logical_cores",
        "psutil.boot_time_unix",
    }
)


def _empty(key: str, value: object) -> bool:
    """A fact with nothing to say on this device: None, '', [], {} or a zero frequency."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, (str, list, tuple, Mapping)) and len(value) == 0:
        return True
    return (
        "freq" in key
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (value == 0)
    )


def _prune(facts: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """The facts without empty values, nested dicts pruned too (and dropped when empty)."""
    kept: dict[str, object] = {}
    for key, value in facts.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        pruned = _prune(value, name) if isinstance(value, Mapping) else value
        if not _empty(name, pruned):
            kept[str(key)] = pruned
    return kept


def core_lines(cores: Sequence[Mapping[str, object]]) -> str:
    """Per-core records as one line per distinct kind: '2 × AMD EPYC, no cpufreq'."""
    counts: dict[str, int] = {}
    for core in cores:
        name = str(core.get("core_type") or core.get("part") or core.get("model") or "core")
        max_khz = core.get("max_freq_khz", core.get("max_khz"))
        governor = core.get("governor")
        text = name
        if isinstance(max_khz, (int, float)) and not isinstance(max_khz, bool) and max_khz > 0:
            text += f", up to {float(max_khz) / 1000:.0f} MHz"
        else:
            text += ", no cpufreq"
        if governor:
            text += f", {governor}"
        counts[text] = counts.get(text, 0) + 1
    return "; ".join(f"{count} × {text}" for text, count in counts.items())


def compact_facts(facts: object) -> list[tuple[str, str]]:
    """Device facts for the report: no empty rows, the per-core lists collapsed into one line
    per distinct kind of core, facts said twice said once (``flatten_facts`` for the rest)."""
    if not isinstance(facts, Mapping):
        return flatten_facts(facts)
    rows: list[tuple[str, str]] = []
    rest: dict[str, object] = {}
    for key, value in _prune(facts).items():
        if (
            key in CORE_LISTS
            and isinstance(value, (list, tuple))
            and all(isinstance(item, Mapping) for item in value)
        ):
            rows.append((key, core_lines([cast(Mapping[str, object], v) for v in value])))
        else:
            rest[key] = value
    rows += [
        (k, v)
        for k, v in flatten_facts(rest)
        if not any(k == r or k.startswith(f"{r}.") for r in REDUNDANT_FACTS) and v != "–"
    ]
    order = {key: index for index, key in enumerate(PREFERRED_FACTS)}
    return sorted(
        rows, key=lambda kv: (order.get(kv[0].split(".")[0].split("[")[0], len(order)), kv[0])
    )


def _summary_section(answers: Answers) -> str:
    """The answers first: budget table, latency range, separable/standard, noise."""
    items: list[str] = []
    grouped = picks_by_series(answers.picks)
    for series, picks in grouped.items():
        budgets = "".join(f'<td class="num">{pick.budget_ms:.3g}</td>' for pick in picks)
        cells = "".join(f"<td>{escape(pick.cell)}</td>" for pick in picks)
        top1 = "".join(f'<td class="num">{pick.top1:.1f}</td>' for pick in picks)
        who = f" ({escape(series)})" if len(grouped) > 1 else ""
        items.append(
            f"<li><strong>For a latency budget</strong>{who}, the most accurate cell that "
            "fits: from each budget on (median latency) up to the next, pick the cell below "
            "it (top-1 as in the accuracy chart)."
            '<div class="scroll"><table><tbody>'
            f"<tr><th>budget ≥ (ms)</th>{budgets}</tr><tr><th>cell α/resolution</th>{cells}"
            f"</tr><tr><th>top-1 (%)</th>{top1}</tr></tbody></table></div></li>"
        )
    if answers.latency_range:
        items.append(f"<li><strong>Latency range:</strong> {escape(answers.latency_range)}</li>")
    if answers.separable_standard:
        items.append(
            "<li><strong>Separable vs standard:</strong> "
            f"{escape(answers.separable_standard)} (see the first chart).</li>"
        )
    if answers.noise:
        items.append(f"<li><strong>Noise:</strong> {escape(answers.noise)}.</li>")
    if not items:
        return '<div class="answers"><p>The selected runs hold no measured model.</p></div>'
    return f'<div class="answers" id="summary"><ul>{"".join(items)}</ul></div>'


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool],
    row_classes: Sequence[str] | None = None,
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body: list[str] = []
    for index, row in enumerate(rows):
        status = row_classes[index] if row_classes else ""
        css = f' class="{escape(status)}"' if status in ("failed", "partial") else ""
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if numeric[i] else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _runs_section(runs: pd.DataFrame, results: pd.DataFrame) -> str:
    headers = (
        "run",
        "label",
        "device",
        "kind",
        "created",
        "harness",
        "onnxruntime",
        "results",
        "failed or partial",
        "unstable",
    )
    rows: list[list[str]] = []
    for run in runs.itertuples(index=False):
        run_id = int(getattr(run, "run_id", 0))
        part = results[results["run_id"] == run_id] if "run_id" in results.columns else results
        status = part["status"].astype(str) if "status" in part.columns else pd.Series(dtype=str)
        flags = (
            part["flags"].fillna("").astype(str)
            if "flags" in part.columns
            else pd.Series(dtype=str)
        )
        rows.append(
            [
                str(run_id),
                _fmt(getattr(run, "label", "")),
                _fmt(getattr(run, "device", "")),
                _fmt(getattr(run, "device_kind", "")),
                _fmt(str(getattr(run, "created_at", "") or "")[:19].replace("T", " ")),
                _fmt(getattr(run, "harness_version", "")),
                _fmt(getattr(run, "runtime_version", "")),
                str(len(part)),
                str(int((status != "ok").sum())),
                str(int((flags != "").sum())),
            ]
        )
    return _table(headers, rows, [True, False, False, False, False, False, False, True, True, True])


def _devices_section(runs: pd.DataFrame) -> str:
    blocks: list[str] = []
    seen: set[str] = set()
    for run in sorted(runs.itertuples(index=False), key=lambda r: -int(getattr(r, "run_id", 0))):
        device = str(getattr(run, "device", "") or "unknown device")
        if device in seen:
            continue
        seen.add(device)
        raw = getattr(run, "device_facts", None)
        facts = compact_facts(raw)
        kind = str(getattr(run, "device_kind", "") or "")
        title = escape(device) + (f" <small>({escape(kind)})</small>" if kind else "")
        if facts:
            table = _table(("fact", "value"), [list(kv) for kv in facts], [False, False])
            note = (
                f'<p class="files">facts recorded with run #{_fmt(getattr(run, "run_id", ""))}</p>'
            )
            if isinstance(raw, Mapping):
                text = json.dumps(raw, indent=1, sort_keys=True, default=str)
                note += (
                    "<details><summary>raw facts (JSON)</summary>"
                    f"<pre>{escape(text)}</pre></details>"
                )
        else:
            table = "<p>No device facts were recorded for this device.</p>"
            note = ""
        blocks.append(f'<div class="device"><h3>{title}</h3>{table}{note}</div>')
    return f'<div class="devices">{"".join(blocks)}</div>'


def _chart_section(chart: Chart) -> str:
    anchor = f'<h2 id="{escape(chart.name)}">{escape(chart.title)}</h2>'
    if chart.png is None:
        return (
            anchor + '<div class="nodata"><p><strong>No chart:</strong> '
            f"{escape(chart.missing)}.</p><p>To get it: <code>{escape(chart.hint)}</code>"
            "</p></div>"
        )
    data = base64.b64encode(chart.png).decode("ascii")
    files = (
        f"{chart.name}.png"
        + (f", {chart.name}.svg" if chart.svg else "")
        + f", data in {chart.name}.csv"
    )
    return (
        anchor + f'<figure><img src="data:image/png;base64,{data}" '
        f'alt="{escape(chart.title)}"></figure>'
        f'<p class="reading">{escape(chart.reading)}</p>'
        f'<p class="files">Files beside this report: {escape(files)}</p>'
    )


def _sort_results(results: pd.DataFrame) -> pd.DataFrame:
    frame = results.copy()
    for column in ("alpha", "resolution"):
        frame[f"_{column}"] = (
            pd.to_numeric(frame[column], errors="coerce").fillna(-1)
            if column in frame.columns
            else -1
        )
    sort = [c for c in ("run_id", "variant", "precision", "threads") if c in frame.columns]
    return cast(
        pd.DataFrame,
        frame.sort_values(
            [*sort, "_alpha", "_resolution"], ascending=[True] * len(sort) + [False, False]
        ),
    )


def _results_section(results: pd.DataFrame) -> str:
    if results.empty:
        return "<p>The selected runs hold no results.</p>"
    headers = (
        "run",
        "model",
        "config",
        "p50 (ms)",
        "p90 (ms)",
        "95 % CI of p50 across trials (ms)",
        "spread (%)",
        "within-process CI (ms)",
        "CV (%)",
        "trials",
        "peak RSS (MiB)",
        "MACs (M)",
        "params (M)",
        "status",
        "flags",
    )
    rows: list[list[str]] = []
    classes: list[str] = []
    for row in _sort_results(results).to_dict("records"):
        ci = (
            f"{_fmt(row.get('ci_low_ms'))}–{_fmt(row.get('ci_high_ms'))}"
            if not math.isnan(_num(row.get("ci_low_ms")))
            else f"– ({row.get('ci_reason') or 'none'})"
        )
        within = f"{_fmt(row.get('within_ci_low_ms'))}–{_fmt(row.get('within_ci_high_ms'))}"
        rows.append(
            [
                _fmt(row.get("run_id")),
                _fmt(row.get("name")),
                config_text(
                    str(row.get("variant") or ""),
                    str(row.get("precision") or ""),
                    _num(row.get("kernel")),
                    _num(row.get("threads")),
                ),
                _fmt(row.get("p50_ms")),
                _fmt(row.get("p90_ms")),
                ci,
                _fmt(100 * _num(row.get("spread")), 2),
                within,
                _fmt(100 * _num(row.get("cv")), 2),
                _fmt(row.get("trials")),
                _fmt(_num(row.get("peak_rss_bytes")) / MIB),
                _fmt(_num(row.get("macs")) / 1e6, 4),
                _fmt(_num(row.get("params")) / 1e6),
                _fmt(row.get("status")),
                str(row.get("flags") or "").replace(",", ", "),
            ]
        )
        classes.append(str(row.get("status") or ""))
    numeric = [True, False, False, True, True, True, True, True, True, True, True, True, True]
    numeric += [False, False]
    return _table(headers, rows, numeric, classes)


def problem_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Results that failed, partly failed or carry instability flags."""
    if results.empty:
        return results
    status = results["status"].astype(str) if "status" in results.columns else "ok"
    flags = results["flags"].fillna("").astype(str) if "flags" in results.columns else ""
    return cast(pd.DataFrame, results[(status != "ok") | (flags != "")])


def _reasons(measurements: pd.DataFrame | None) -> dict[tuple[int, str], str]:
    """Distinct failure reasons per (run_id, model name) from the per-trial frame."""
    if (
        measurements is None
        or measurements.empty
        or not {"run_id", "name", "reason"} <= set(measurements.columns)
    ):
        return {}
    found: dict[tuple[int, str], list[str]] = {}
    for row in measurements.to_dict("records"):
        reason = row.get("reason")
        if (
            reason is None
            or (isinstance(reason, float) and math.isnan(reason))
            or not str(reason).strip()
        ):
            continue
        texts = found.setdefault((int(row["run_id"]), str(row["name"])), [])
        if str(reason) not in texts:
            texts.append(str(reason))
    return {key: "; ".join(texts[:3]) for key, texts in found.items()}


def _problems_section(results: pd.DataFrame, measurements: pd.DataFrame | None) -> str:
    problems = problem_rows(results)
    if problems.empty:
        return '<p class="allok">Every measurement completed and none is flagged as unstable.</p>'
    reasons = _reasons(measurements)
    headers = ("run", "model", "config", "status", "failed trials", "flags", "reason")
    rows: list[list[str]] = []
    classes: list[str] = []
    for row in _sort_results(problems).to_dict("records"):
        flags = [f for f in str(row.get("flags") or "").split(",") if f]
        flag_text = "; ".join(
            f"{f} ({FLAG_MEANINGS[f]})" if f in FLAG_MEANINGS else f for f in flags
        )
        key = (int(_num(row.get("run_id"))), str(row.get("name")))
        rows.append(
            [
                _fmt(row.get("run_id")),
                _fmt(row.get("name")),
                config_text(
                    str(row.get("variant") or ""),
                    str(row.get("precision") or ""),
                    _num(row.get("kernel")),
                    _num(row.get("threads")),
                ),
                _fmt(row.get("status")),
                f"{_fmt(row.get('failed_trials'))} of {_fmt(row.get('trials'))}",
                flag_text or "–",
                _fmt(row.get("reasons"))
                if row.get("reasons") not in (None, "") and row.get("reasons") is not pd.NA
                else reasons.get(key) or str(row.get("unreliable") or "") or "–",
            ]
        )
        classes.append(str(row.get("status") or ""))
    count = len(problems)
    intro = (
        f'<p class="bad">{count} result{"s" if count != 1 else ""} failed, partly failed '
        "or are unreliable; re-measure them (on an idle device, with a fixed governor) "
        "before trusting their medians.</p>"
    )
    return intro + _table(headers, rows, [True, False, False, False, True, False, False], classes)


def render_html(
    runs: pd.DataFrame,
    results: pd.DataFrame,
    charts: Sequence[Chart],
    *,
    harness_version: str,
    accuracy_note: str,
    measurements: pd.DataFrame | None = None,
    generated_at: datetime | None = None,
    answers: Answers | None = None,
    trust_results: pd.DataFrame | None = None,
) -> str:
    """The whole report as one HTML string (UTF-8, no external references, no script):
    the answers, the table of contents, the charts, then the detail. The trust section
    judges ``trust_results`` when given (the results with the layer probes), else
    ``results``."""
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    runtimes = sorted(
        {
            str(v)
            for v in runs.get("runtime_version", pd.Series(dtype=str))
            if v is not None and str(v)
        }
    )
    devices = sorted({str(v) for v in runs.get("device", pd.Series(dtype=str)) if v})
    run_ids = ", ".join(f"#{int(r)}" for r in runs.get("run_id", pd.Series(dtype=int)))
    nav = "".join(
        f'<li><a href="#{escape(c.name)}">{escape(c.title)}</a>'
        f"{'' if c.has_image else ' (no data)'}</li>"
        for c in charts
    )
    nav += (
        '<li><a href="#runs">Runs</a></li>'
        '<li><a href="#devices">Devices</a></li>'
        '<li><a href="#results">Results table</a></li>'
        '<li><a href="#problems">Failed or unstable measurements</a></li>'
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mnbench report: {escape(', '.join(devices) or 'no device')}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>MobileNetV1 benchmark report</h1>",
        f'<p class="meta">Runs {escape(run_ids or "–")} on {escape(", ".join(devices) or "–")}'
        f" · onnxruntime {escape(', '.join(runtimes) or '–')} · report by mnbench "
        f"{escape(harness_version)} · {escape(when)}</p>",
        html_section(trust_of(trust_results if trust_results is not None else results)),
        _summary_section(answers) if answers is not None else "",
        f"<nav><ul>{nav}</ul></nav>",
    ]
    parts.extend(_chart_section(chart) for chart in charts)
    parts += [
        '<h2 id="runs">Runs</h2>',
        _runs_section(runs, results),
        '<h2 id="devices">Devices</h2>',
        _devices_section(runs),
        '<h2 id="results">Results</h2>',
        "<p>One row per run × model × configuration, aggregated over trials (fresh process "
        "per trial). p50 is the median latency; its 95 % confidence interval is across trials "
        "(a t-interval on the log of each trial's median; none below 3 trials), spread is the "
        "between-trial SD of log medians, and the within-process interval (a bootstrap of the "
        "pooled samples) is secondary: it leaves out how much processes differ.</p>",
        _results_section(results),
        '<h2 id="problems">Failed or unstable measurements</h2>',
        _problems_section(results, measurements),
        f'<p class="files">Accuracy: {escape(accuracy_note)}</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
