"""From the store's result frame to the rows and series a chart draws.

``Store.results_frame`` already types its columns (nullable ``Int64`` for counts, ``float64``
for times, text for names). ``typed`` takes the numeric columns a chart computes with to
``float64`` once (a missing count becomes NaN, never ``pd.NA`` in a boolean mask) and the
text columns to plain strings (missing -> ''), and adds absent columns of an older store as
empty; no chart converts a column again. A series is one run × precision (× variant ×
thread count when those vary), keyed by a ``SeriesKey``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from mobilenet.table import terminal_safe

NUMERIC_COLUMNS: tuple[str, ...] = (
    "alpha",
    "resolution",
    "kernel",
    "threads",
    "p50_ms",
    "p90_ms",
    "ci_low_ms",
    "ci_high_ms",
    "macs",
    "params",
    "peak_rss_bytes",
    "peak_rss_load_bytes",
    "file_bytes",
    "weight_bytes",
    "peak_activation_bytes",
    "run_id",
)
TEXT_COLUMNS: tuple[str, ...] = ("variant", "precision", "status", "name", "flags")


def float_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column as float64, all-NaN when the frame lacks it (older stores)."""
    if name in frame.columns:
        # float64 so nullable Int64 columns become NaN, never pd.NA in a boolean mask
        return pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return cast(pd.Series, pd.Series(np.nan, index=frame.index, dtype=float))


def _text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].map(
            lambda v: (
                ""
                if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                else str(v)
            )
        )
    return pd.Series("", index=frame.index, dtype=object)


def typed(results: pd.DataFrame, text: Sequence[str] = TEXT_COLUMNS) -> pd.DataFrame:
    """The result rows with the charts' numeric columns as float64 and ``text`` as str."""
    frame: pd.DataFrame = results.copy()
    for name in NUMERIC_COLUMNS:
        frame[name] = float_column(frame, name)
    for name in text:
        frame[name] = _text_column(frame, name)
    return frame


def measured(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable median latency (ok or partial, p50 > 0), columns as ``typed``."""
    frame = typed(results)
    usable = (frame["status"] != "failed") & (frame["p50_ms"] > 0)
    return cast(pd.DataFrame, frame[usable].reset_index(drop=True))


def threads_vary(frame: pd.DataFrame) -> bool:
    """Whether any run holds more than one thread count (then series split by threads)."""
    if frame.empty:
        return False
    counts = frame.groupby("run_id")["threads"].nunique(dropna=False)
    return bool((counts > 1).any())


SeriesKey = tuple[int, str, str, float]
"""(run_id, precision, variant or '', threads or NaN): one series of a chart."""


def series_keys(frame: pd.DataFrame, by_threads: bool, by_variant: bool = False) -> list[SeriesKey]:
    """One key per row; variant and threads only split series when asked."""
    keys: list[SeriesKey] = []
    for run_id, precision, variant, threads in zip(
        frame["run_id"], frame["precision"], frame["variant"], frame["threads"], strict=True
    ):
        count = float(threads) if by_threads else math.nan
        keys.append(
            (
                int(run_id),
                str(precision),
                str(variant) if by_variant else "",
                math.nan if math.isnan(count) else count,
            )
        )  # one NaN object: set-safe
    return keys


def rows_of(frame: pd.DataFrame, key: SeriesKey) -> pd.DataFrame:
    """The rows of one series (tuples compared one by one, never broadcast by pandas)."""
    mask = [_same_key(k, key) for k in frame["series_key"]]
    return cast(pd.DataFrame, frame[mask])


def _same_key(a: SeriesKey, b: SeriesKey) -> bool:
    return a[:3] == b[:3] and (a[3] == b[3] or (math.isnan(a[3]) and math.isnan(b[3])))


def series_name(labels: dict[int, str], key: SeriesKey, show_precision: bool) -> str:
    """A series' legend text: the run's label and what splits it from its siblings."""
    run_id, precision, variant, threads = key
    name = labels.get(run_id, f"run {run_id}")
    extra = []
    if show_precision and precision:
        extra.append(precision)
    if variant:
        extra.append(variant)
    if not math.isnan(threads):
        extra.append(f"{int(threads)} thr")
    return f"{name} ({', '.join(extra)})" if extra else name


def sorted_keys(keys: Iterable[SeriesKey]) -> list[SeriesKey]:
    """The distinct series keys in drawing order."""
    return sorted(set(keys), key=lambda k: (k[0], k[1], k[2], -1.0 if math.isnan(k[3]) else k[3]))


def row_at(frame: pd.DataFrame, column: str, largest: bool) -> dict[str, Any]:
    """The row (as a dict) holding the largest or smallest value of ``column``."""
    values = frame[column].to_numpy(dtype=float)
    position = int(np.nanargmax(values) if largest else np.nanargmin(values))
    return {str(k): v for k, v in frame.iloc[position].to_dict().items()}


class Row:
    """Attribute access to one record of a frame, values typed Any (pandas-stubs friendly)."""

    def __init__(self, record: dict[Any, Any]) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float] | None:
    """Least squares on log10 x, log10 y: (slope, intercept, r); None below 2 distinct x."""
    lx = np.log10(np.asarray(x, dtype=float))
    ly = np.log10(np.asarray(y, dtype=float))
    if len(set(np.round(lx, 9).tolist())) < 2:
        return None
    slope, intercept = np.polyfit(lx, ly, 1)
    r = float(np.corrcoef(lx, ly)[0, 1]) if len(lx) > 2 else math.nan
    return float(slope), float(intercept), r


def run_label(labels: dict[int, str], run_id: object) -> str:
    """The label of a run, or 'run N' when it has none."""
    number = int(float(run_id))  # type: ignore[arg-type]
    return labels.get(number, f"run {number}")


def series_labels(runs: pd.DataFrame) -> dict[int, str]:
    """Series label per run: '#id device · ORT version · label' (label left out when empty)."""
    labels: dict[int, str] = {}
    for run in runs.to_dict("records"):
        run_id = int(run["run_id"])
        parts = [f"#{run_id} {run.get('device') or 'unknown device'}"]
        runtime = run.get("runtime_version")
        if runtime is not None and str(runtime) and str(runtime) != "nan":
            parts.append(f"ORT {runtime}")
        label = run.get("label")
        if label is not None and str(label) and str(label) != "nan":
            parts.append(str(label))
        labels[run_id] = terminal_safe(" · ".join(parts))  # no control characters in charts
    return labels
