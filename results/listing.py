"""What ``mnbench results`` shows: the runs a selection names, and their results as a table,
CSV or JSON.

The store aggregates (``results.views.results_frame``); this module selects runs and
formats. Tables carry units in the header; CSV and JSON carry exactly ``RESULT_COLUMNS`` so
scripts can rely on them. pandas is imported only inside the functions, so a command's
``--help`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from mobilenet.errors import UserError
from mobilenet.table import json_text, terminal_safe
from results.store import RESULT_COLUMNS, RunRecord, Store, default_db_path

if TYPE_CHECKING:
    import pandas as pd

OutputFormat = Literal["table", "csv", "json"]
FORMATS: Final[tuple[OutputFormat, ...]] = ("table", "csv", "json")
MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class Selection:
    """The runs a selection names, with their results (one row per model x configuration)."""

    runs: tuple[RunRecord, ...]
    frame: pd.DataFrame | None = None
    """None when only the runs were asked for."""


def select_runs(
    db: Path | str | None = None,
    run: str | None = None,
    campaign: str | None = None,
    listing: bool = False,
) -> Selection:
    """From the store at ``db`` (None: ``$MNBENCH_DB``, else ./mnbench.sqlite), read-only:
    the runs of ``campaign``, or ``run`` (an id, label, ``latest``, the default, or ``all``),
    with their results; with ``listing`` every run of the store (or of the campaign),
    without results."""
    if campaign is not None and run is not None:
        raise UserError("--campaign selects its own runs; give --campaign or --run, not both")
    with Store.open(default_db_path() if db is None else db, readonly=True) as store:
        return _select(store, run, campaign, listing)


def _select(store: Store, run: str | None, campaign: str | None, listing: bool) -> Selection:
    if campaign is not None:
        run_ids: list[int] | None = store.campaign_run_ids(campaign)
        frame = store.results_frame(run_ids)
        runs = tuple(store.get_run(run_id) for run_id in run_ids or [])
        return Selection(runs, None if listing else frame)
    if listing:
        every = store.list_runs()
        if not every:
            raise UserError(f"{store.path} holds no runs yet; measure with `mnbench run`")
        return Selection(tuple(every))
    spec = str(run or "latest").strip()
    if spec.lower() == "all":
        run_ids = None
        store.resolve_run_id("latest")  # an empty store is an error, as for one run
    else:
        run_ids = [store.resolve_run_id(spec)]
    frame = store.results_frame(run_ids)
    chosen = [store.get_run(run_id) for run_id in run_ids] if run_ids else store.list_runs()
    return Selection(tuple(chosen), frame)


def format_selection(selection: Selection, output: OutputFormat) -> str:
    """The selection's results, or its run list when it holds no results."""
    if selection.frame is None:
        return format_runs(selection.runs, output)
    return format_results(selection.frame, selection.runs, output)


def _plain(value: object) -> object:
    """A JSON-ready Python value: NaN/NA become None, numpy scalars become Python ones."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    item = getattr(value, "item", None)
    if callable(item):
        return _plain(item())
    return value


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, object]]:
    return [
        {column: _plain(value) for column, value in zip(columns, row, strict=True)}
        for row in frame[list(columns)].itertuples(index=False, name=None)
    ]


def _ms(value: object) -> str:
    number = _plain(value)
    if not isinstance(number, (int, float)):
        return "-"
    if number >= 100:
        return f"{number:.1f}"
    if number >= 10:
        return f"{number:.2f}"
    return f"{number:.3f}"


def _int(value: object) -> str:
    number = _plain(value)
    return "-" if number is None else str(number)


def _scaled(divisor: float, digits: int) -> Callable[[object], str]:
    def render(value: object) -> str:
        number = _plain(value)
        if not isinstance(number, (int, float)):
            return "-"
        return f"{number / divisor:.{digits}f}"

    return render


def _text(value: object) -> str:
    plain = _plain(value)
    return "-" if plain is None or plain == "" else str(plain)


Column = tuple[str, str, Callable[[object], str], Literal["<", ">"]]
"""(header with unit, frame column, renderer, alignment)."""

_TABLE_COLUMNS: Final[tuple[Column, ...]] = (
    ("model", "name", _text, "<"),
    ("threads", "threads", _int, ">"),
    ("cpus", "cpus", _text, "<"),
    ("trials", "trials", _int, ">"),
    ("p50 ms", "p50_ms", _ms, ">"),
    ("CI95 low ms", "ci_low_ms", _ms, ">"),
    ("CI95 high ms", "ci_high_ms", _ms, ">"),
    ("spread %", "spread", _scaled(0.01, 1), ">"),
    ("within-process CI95 low ms", "within_ci_low_ms", _ms, ">"),
    ("within-process CI95 high ms", "within_ci_high_ms", _ms, ">"),
    ("p90 ms", "p90_ms", _ms, ">"),
    ("p99 ms", "p99_ms", _ms, ">"),
    ("mean ms", "mean_ms", _ms, ">"),
    ("std ms", "std_ms", _ms, ">"),
    ("min ms", "min_ms", _ms, ">"),
    ("samples", "samples", _int, ">"),
    ("load ms", "load_ms", _ms, ">"),
    ("first ms", "first_ms", _ms, ">"),
    ("peak RSS MiB", "peak_rss_bytes", _scaled(MIB, 1), ">"),
    ("MMACs", "macs", _scaled(1e6, 1), ">"),
    ("status", "status", _text, "<"),
    ("flags", "flags", _text, "<"),
    ("failure reasons", "reasons", _text, "<"),
)
"""CI95 is the cross-trial interval of the median (none below 3 trials: see ``ci_reason``);
spread is the between-trial SD of log medians; the within-process interval is secondary."""


def _align(header: Sequence[str], rows: list[list[str]], aligns: Sequence[str]) -> str:
    rows = [[terminal_safe(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if align == "<" else cell.rjust(width)
            for cell, width, align in zip(cells, widths, aligns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)]) + "\n"


def _run_heading(record: RunRecord) -> str:
    parts = [
        f"run {record.id}",
        record.created_at[:19].replace("T", " ") + " UTC",
        record.status,
        f"{record.device} ({record.device_kind})",
        f"onnxruntime {record.runtime_version or '?'}",
        f"{record.measurements} measurements, {record.failed_measurements} failed",
    ]
    if record.label:
        parts.insert(1, repr(record.label))
    if record.campaign:
        parts.insert(1, f"campaign {record.campaign}")
    return terminal_safe(" | ".join(parts))


def format_results(frame: pd.DataFrame, runs: Sequence[RunRecord], output: OutputFormat) -> str:
    """Render ``results_frame`` output; csv/json carry exactly ``RESULT_COLUMNS``."""
    if output == "json":
        return json_text(_records(frame, RESULT_COLUMNS)) + "\n"
    if output == "csv":
        text: str = frame[list(RESULT_COLUMNS)].to_csv(index=False, lineterminator="\n")
        return text
    blocks: list[str] = []
    for record in runs:
        part = frame[frame["run_id"] == record.id]
        heading = _run_heading(record)
        if part.empty:
            blocks.append(f"{heading}\n(no measurements yet)\n")
            continue
        rows = [
            [render(value) for (_, _, render, _), value in zip(_TABLE_COLUMNS, row, strict=True)]
            for row in part[[c[1] for c in _TABLE_COLUMNS]].itertuples(index=False, name=None)
        ]
        table = _align([c[0] for c in _TABLE_COLUMNS], rows, [c[3] for c in _TABLE_COLUMNS])
        blocks.append(f"{heading}\n{table}")
    return "\n".join(blocks)


def format_runs(runs: Sequence[RunRecord], output: OutputFormat) -> str:
    """The run list (``--list``) as a table, CSV or JSON."""
    records: list[dict[str, object]] = [
        {
            "run_id": r.id,
            "label": r.label,
            "campaign": r.campaign,
            "created_at": r.created_at,
            "finished_at": r.finished_at,
            "status": r.status,
            "device": r.device,
            "device_kind": r.device_kind,
            "runtime_version": r.runtime_version,
            "harness_version": r.harness_version,
            "measurements": r.measurements,
            "failed_measurements": r.failed_measurements,
        }
        for r in runs
    ]
    if output == "json":
        return json_text(records) + "\n"
    if output == "csv":
        import pandas as pd

        text: str = pd.DataFrame(records).to_csv(index=False, lineterminator="\n")
        return text
    header = [
        "run",
        "created (UTC)",
        "status",
        "device",
        "kind",
        "runtime",
        "measurements",
        "failed",
        "campaign",
        "label",
    ]
    rows = [
        [
            str(r.id),
            r.created_at[:19].replace("T", " "),
            r.status,
            r.device,
            r.device_kind,
            r.runtime_version or "-",
            str(r.measurements),
            str(r.failed_measurements),
            r.campaign or "-",
            r.label or "-",
        ]
        for r in runs
    ]
    return _align(header, rows, [">", "<", "<", "<", "<", "<", ">", ">", "<", "<"])
