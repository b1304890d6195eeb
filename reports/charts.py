"""The report's charts: each a pure function of result frames to a ``Chart`` value.

A ``Chart`` carries the rendered PNG (and SVG where vectors help), the data behind it as a
frame (written as CSV), and a one-paragraph reading generated from the data. When there is
nothing to draw, the chart carries no image but the reason and the command that would
produce the data, so the report never shows an empty or broken image.

Charts (docs/architecture.md, "The report"): latency heatmap over α × resolution, latency vs
MACs on log–log axes with the fitted power-law slope against the ideal slope 1, latency vs
ImageNet top-1 with the Pareto frontier, memory against parameters, measured vs MAC
separable/standard ratio (Howard et al. 2017, eq. 5: 1/N + 1/D_K² per layer), and per-layer
time share vs MAC share. Drawing uses matplotlib's object API (``Figure`` rendered by Agg,
no pyplot state) and the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.table import terminal_safe
from reports.accuracy import alpha_key

matplotlib.use("Agg")
# Labels are users' text (run labels, device and model names): '$' is a dollar sign, never
# mathtext, so a label such as '$\foo$' cannot break a chart.
matplotlib.rcParams["text.parse_math"] = False

OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)
VARIANT_MARKERS: dict[str, str] = {"separable": "o", "standard": "s"}
OTHER_MARKER = "^"
DPI = 110
MIB = 1024.0 * 1024.0
MAX_HEATMAP_PANELS = 12
LAYER_KINDS: tuple[str, ...] = ("stem", "depthwise", "pointwise", "standard", "fc")


@dataclass(frozen=True)
class Chart:
    """One chart of the report: image bytes, the data behind it and what it shows."""

    name: str
    """File stem: ``<name>.png``, ``<name>.svg``, ``<name>.csv``."""
    title: str
    reading: str
    """One paragraph generated from the data; empty when there is no chart."""
    data: pd.DataFrame
    png: bytes | None = None
    svg: bytes | None = None
    missing: str = ""
    """Why there is no chart (empty when there is one)."""
    hint: str = ""
    """The command that would produce the missing data."""

    @property
    def has_image(self) -> bool:
        return self.png is not None


def no_chart(name: str, title: str, missing: str, hint: str) -> Chart:
    """A chart without data: the reason and what to run instead of an image."""
    return Chart(
        name=name, title=title, reading="", data=pd.DataFrame(), missing=missing, hint=hint
    )


# ----------------------------------------------------------------------------- helpers


def alpha_text(alpha: float) -> str:
    """0.75 -> '0.75', 1 -> '1.0' (the spelling of the TF-Slim model names)."""
    text = f"{float(alpha):g}"
    return text if "." in text else text + ".0"


def cell_text(alpha: float, resolution: float) -> str:
    """The label of one grid cell: ``α/resolution``, e.g. ``0.75/160``."""
    return f"{alpha_text(alpha)}/{int(resolution)}"


def colour(index: int) -> str:
    return OKABE_ITO[index % len(OKABE_ITO)]


def _render(fig: Figure, svg: bool) -> tuple[bytes, bytes | None]:
    """PNG (and SVG) bytes of a figure; SVGs carry no date so equal data gives equal bytes."""
    png_buffer = io.BytesIO()
    fig.savefig(png_buffer, format="png", dpi=DPI)
    svg_bytes: bytes | None = None
    if svg:
        fig.set_layout_engine("none")  # keep the positions found for the PNG: lay out once
        svg_buffer = io.BytesIO()
        fig.savefig(svg_buffer, format="svg", metadata={"Date": None})
        svg_bytes = svg_buffer.getvalue()
    return png_buffer.getvalue(), svg_bytes


def _plain_log_ticks(ax: Axes) -> None:
    """Log axes labelled 0.5, 1, 10, 100 rather than 10⁰ (read at a glance)."""
    formatter = FuncFormatter(lambda value, _pos: f"{value:g}")
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_formatter(formatter)


LegendLoc = Literal["upper left", "upper right", "lower left", "lower right", "best"]


def _finish_axes(
    ax: Axes,
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    x_base: int = 10,
    y_log: bool = True,
    legend: LegendLoc = "upper left",
    legend_size: int = 8,
) -> None:
    """The common finish of a log-log (or log-x) chart: scales, plain ticks, labels, grid."""
    ax.set_xscale("log", base=x_base)
    if y_log:
        ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=legend_size, loc=legend)


def _float(value: object) -> float:
    """A cell as float; None, NaN, strings that are not numbers -> NaN."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return result


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column, all-NaN when the frame lacks it (older stores, foreign models)."""
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


def measured(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable median latency (ok or partial, p50 > 0), numeric columns coerced."""
    frame = results.copy()
    for name in (
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
    ):
        frame[name] = _column(frame, name)
    for name in ("variant", "precision", "status", "name", "flags"):
        frame[name] = _text_column(frame, name)
    usable = (frame["status"] != "failed") & (frame["p50_ms"] > 0)
    return cast(pd.DataFrame, frame[usable].reset_index(drop=True))


def config_text(variant: str, precision: str, kernel: float, threads: float) -> str:
    """A configuration as words: 'separable fp32, 4 threads' (+ 'D_K=5' when not 3)."""
    parts = [p for p in (variant, precision) if p]
    text = " ".join(parts)
    if not math.isnan(kernel) and int(kernel) != 3:
        text += f", D_K={int(kernel)}"
    if not math.isnan(threads) and threads > 0:
        text += f", {int(threads)} thread{'s' if int(threads) != 1 else ''}"
    return text


def _threads_vary(frame: pd.DataFrame) -> bool:
    """Whether any run holds more than one thread count (then series split by threads)."""
    if frame.empty:
        return False
    counts = frame.groupby("run_id")["threads"].nunique(dropna=False)
    return bool((counts > 1).any())


SeriesKey = tuple[int, str, str, float]
"""(run_id, precision, variant or '', threads or NaN): one series of a chart."""


def _series_key(frame: pd.DataFrame, by_threads: bool, by_variant: bool = False) -> list[SeriesKey]:
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


def _rows_of(frame: pd.DataFrame, key: SeriesKey) -> pd.DataFrame:
    """The rows of one series (tuples compared one by one, never broadcast by pandas)."""
    mask = [_same_key(k, key) for k in frame["series_key"]]
    return cast(pd.DataFrame, frame[mask])


def _same_key(a: SeriesKey, b: SeriesKey) -> bool:
    return a[:3] == b[:3] and (a[3] == b[3] or (math.isnan(a[3]) and math.isnan(b[3])))


def _series_name(labels: dict[int, str], key: SeriesKey, show_precision: bool) -> str:
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


def _sorted_keys(keys: Iterable[SeriesKey]) -> list[SeriesKey]:
    return sorted(set(keys), key=lambda k: (k[0], k[1], k[2], -1.0 if math.isnan(k[3]) else k[3]))


def _row_at(frame: pd.DataFrame, column: str, largest: bool) -> dict[str, Any]:
    """The row (as a dict) holding the largest or smallest value of ``column``."""
    values = frame[column].to_numpy(dtype=float)
    position = int(np.nanargmax(values) if largest else np.nanargmin(values))
    return {str(k): v for k, v in frame.iloc[position].to_dict().items()}


class _Row:
    """Attribute access to one record of a frame, values typed Any (pandas-stubs friendly)."""

    def __init__(self, record: dict[Any, Any]) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


def _loglog_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float] | None:
    """Least squares on log10 x, log10 y: (slope, intercept, r); None below 2 distinct x."""
    lx = np.log10(np.asarray(x, dtype=float))
    ly = np.log10(np.asarray(y, dtype=float))
    if len(set(np.round(lx, 9).tolist())) < 2:
        return None
    slope, intercept = np.polyfit(lx, ly, 1)
    r = float(np.corrcoef(lx, ly)[0, 1]) if len(lx) > 2 else math.nan
    return float(slope), float(intercept), r


def _join(items: Sequence[str], limit: int = 4) -> str:
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append(f"and {len(items) - limit} more")
    return "; ".join(shown)


# ----------------------------------------------------------------------------- 1 heatmap


def latency_heatmap(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Median latency over α × resolution, one panel per run and configuration."""
    name, title = "latency_heatmap", "Latency heatmap (α × resolution)"
    frame = measured(results)
    grid = frame[frame["alpha"].notna() & frame["resolution"].notna()]
    if grid.empty:
        return no_chart(
            name,
            title,
            "no grid model (α × resolution) has a median latency in "
            "the selected runs; measure the α × resolution grid",
            "mnbench run",
        )
    group_cols = ["run_id", "variant", "precision", "kernel", "threads"]
    panels = [(key, part) for key, part in grid.groupby(group_cols, dropna=False, sort=True)]
    truncated = len(panels) > MAX_HEATMAP_PANELS
    panels = panels[:MAX_HEATMAP_PANELS]
    values = grid["p50_ms"].to_numpy(dtype=float)
    vmin, vmax = float(values.min()), float(values.max())
    norm: Normalize = (
        LogNorm(vmin=vmin, vmax=vmax)
        if vmax > vmin * 1.0001
        else Normalize(vmin=vmin * 0.9, vmax=vmax * 1.1)
    )
    ncols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.6 * ncols + 0.9, 4.3 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    rows: list[dict[str, object]] = []
    sentences: list[str] = []
    image = None
    for index, (key, part) in enumerate(panels):
        run_id, variant, precision, kernel, threads = key
        ax: Axes = axes[index // ncols][index % ncols]
        alphas = sorted({float(a) for a in part["alpha"]}, reverse=True)
        resolutions = sorted({int(r) for r in part["resolution"]})
        matrix = np.full((len(alphas), len(resolutions)), np.nan)
        for row in map(_Row, part.to_dict("records")):
            i = alphas.index(float(row.alpha))
            j = resolutions.index(int(row.resolution))
            matrix[i, j] = float(row.p50_ms)
            rows.append(
                {
                    "run_id": int(run_id),
                    "series": labels.get(int(run_id), ""),
                    "variant": variant,
                    "precision": precision,
                    "kernel": kernel,
                    "threads": threads,
                    "alpha": float(row.alpha),
                    "resolution": int(row.resolution),
                    "p50_ms": float(row.p50_ms),
                    "ci_low_ms": float(row.ci_low_ms),
                    "ci_high_ms": float(row.ci_high_ms),
                }
            )
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", norm=norm, aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(resolutions)):
                value = matrix[i, j]
                if math.isnan(value):
                    ax.text(j, i, "–", ha="center", va="center", color="#555555")
                    continue
                shade = norm(value)
                ax.text(
                    j,
                    i,
                    f"{value:.3g}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    fontweight="bold",
                    color="black" if float(shade) > 0.55 else "white",
                )
        ax.set_xticks(range(len(resolutions)), [str(r) for r in resolutions])
        ax.set_yticks(range(len(alphas)), [alpha_text(a) for a in alphas])
        ax.set_xlabel("input resolution (pixels)")
        ax.set_ylabel("width multiplier α")
        config = config_text(str(variant), str(precision), _float(kernel), _float(threads))
        ax.set_title(f"{labels.get(int(run_id), f'run {run_id}')}\n{config}", fontsize=10)
        fastest = _row_at(part, "p50_ms", largest=False)
        slowest = _row_at(part, "p50_ms", largest=True)
        ratio = float(slowest["p50_ms"]) / float(fastest["p50_ms"])
        sentence = (
            f"{labels.get(int(run_id), f'run {run_id}')} ({config}): "
            f"{float(fastest['p50_ms']):.3g} ms at "
            f"{cell_text(fastest['alpha'], fastest['resolution'])} to "
            f"{float(slowest['p50_ms']):.3g} ms at "
            f"{cell_text(slowest['alpha'], slowest['resolution'])} ({ratio:.1f}×"
        )
        macs_fast, macs_slow = _float(fastest["macs"]), _float(slowest["macs"])
        if macs_fast > 0 and macs_slow > 0:
            sentence += f" for {macs_slow / macs_fast:.1f}× the MACs"
        sentences.append(sentence + ")")
    for index in range(len(panels), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    if image is not None:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), label="median latency (ms, log colour)", shrink=0.9
        )
    fig.suptitle("Median latency per α × resolution (ms)", fontsize=12)
    png, _ = _render(fig, svg=False)
    reading = (
        "Each cell is the median latency over trials; darker is faster, one colour "
        "scale across panels. Median latency runs from " + _join(sentences) + "."
    )
    if truncated:
        reading += f" Only the first {MAX_HEATMAP_PANELS} panels are drawn; the CSV holds them all."
    return Chart(name, title, reading, pd.DataFrame(rows), png=png)


# ----------------------------------------------------------------------------- 2 vs MACs


def latency_vs_macs(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Log–log latency against MACs with the fitted power-law slope and the slope-1 line."""
    name, title = "latency_vs_macs", "Latency vs MACs (log–log)"
    frame = measured(results)
    frame = frame[frame["macs"] > 0].reset_index(drop=True)
    if frame.empty or frame["macs"].nunique() < 2:
        return no_chart(
            name,
            title,
            "fewer than two models with both MACs and a median "
            "latency; measure at least two models of the grid",
            "mnbench run",
        )
    by_threads = _threads_vary(frame)
    by_variant = frame["variant"].nunique() > 1
    frame["series_key"] = _series_key(frame, by_threads, by_variant)
    show_precision = frame["precision"].nunique() > 1
    fig = Figure(figsize=(9.5, 6.0), layout="constrained")
    ax = fig.subplots()
    rows: list[dict[str, object]] = []
    sentences: list[str] = []
    labelled: set[str] = set()
    placed: list[tuple[float, float]] = []
    for index, key in enumerate(_sorted_keys(frame["series_key"])):
        part = _rows_of(frame, key)
        series = _series_name(labels, key, show_precision)
        col = colour(index)
        x_part = part["macs"].to_numpy(dtype=float) / 1e6
        x_line = np.geomspace(float(x_part.min()) / 1.1, float(x_part.max()) * 1.1, 20)
        fit = _loglog_fit(part["macs"].tolist(), part["p50_ms"].tolist())
        legend = series if fit is None else f"{series}: slope {fit[0]:.2f}"
        for variant, vpart in part.groupby("variant", sort=True):
            ax.scatter(
                vpart["macs"] / 1e6,
                vpart["p50_ms"],
                color=col,
                s=36,
                zorder=3,
                marker=VARIANT_MARKERS.get(str(variant), OTHER_MARKER),
                edgecolors="white",
                linewidths=0.5,
            )
        ax.plot([], [], color=col, marker="o", label=legend)
        if fit is not None:
            slope, intercept, r = fit
            ax.plot(
                x_line,
                10 ** (intercept + slope * np.log10(x_line * 1e6)),
                color=col,
                linewidth=1.4,
                alpha=0.9,
            )
        largest = _row_at(part, "macs", largest=True)
        x_big, y_big = float(largest["macs"]) / 1e6, float(largest["p50_ms"])
        ax.plot(x_line, y_big * x_line / x_big, color=col, linestyle=":", linewidth=1.2, alpha=0.8)
        for record in part.to_dict("records"):
            row = _Row(record)
            rows.append(
                {
                    "run_id": int(row.run_id),
                    "series": series,
                    "name": row.name,
                    "variant": row.variant,
                    "precision": row.precision,
                    "threads": row.threads,
                    "macs": float(row.macs),
                    "p50_ms": float(row.p50_ms),
                    "fit_slope": fit[0] if fit else math.nan,
                    "fit_intercept_log10_ms": fit[1] if fit else math.nan,
                    "fit_r": fit[2] if fit else math.nan,
                }
            )
            text = (
                cell_text(row.alpha, row.resolution)
                if not math.isnan(row.alpha) and not math.isnan(row.resolution)
                else str(row.name)
            )
            if row.variant == "standard":
                text += " std"
            spot = (math.log10(float(row.macs)), math.log10(float(row.p50_ms)))
            crowded = any(abs(spot[0] - u) < 0.09 and abs(spot[1] - v) < 0.06 for u, v in placed)
            if text not in labelled and not crowded:
                labelled.add(text)
                placed.append(spot)
                ax.annotate(
                    text,
                    (float(row.macs) / 1e6, float(row.p50_ms)),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=7,
                    color="#333333",
                )
        if fit is not None:
            slope, _, r = fit
            small = _row_at(part, "macs", largest=False)
            us_small = 1000 * float(small["p50_ms"]) / (float(small["macs"]) / 1e6)
            us_big = 1000 * y_big / x_big
            reading = (
                f"{series}: slope {slope:.2f}"
                + (f" (r = {r:.3f})" if not math.isnan(r) else "")
                + f", so 10× the MACs costs {10**slope:.1f}× the time; "
                f"{us_small:.0f} µs per million MACs at the smallest model vs "
                f"{us_big:.0f} at the largest"
            )
            sentences.append(reading)
    ax.plot(
        [],
        [],
        color="#666666",
        linestyle=":",
        label="latency ∝ MACs (slope 1, through each series' largest model)",
    )
    for variant, marker in VARIANT_MARKERS.items():
        if (frame["variant"] == variant).any():
            ax.scatter([], [], marker=marker, color="#666666", label=f"{variant} variant")
    _finish_axes(
        ax,
        "multiply-accumulates per inference (millions, log scale)",
        "median latency (ms, log scale)",
        "Latency vs MACs: fitted power law vs the ideal slope 1",
    )
    png, svg = _render(fig, svg=True)
    reading = (
        "Lines are least-squares fits of log latency on log MACs; dotted lines have "
        "slope 1 (latency proportional to MACs) through each series' largest model. "
        "A slope below 1 means small models pay a fixed per-inference overhead and run "
        "further from peak throughput; above 1 means large models fall out of cache. "
    )
    reading += (
        (_join(sentences) + ".")
        if sentences
        else "No series has two distinct MACs values, so no slope is fitted."
    )
    return Chart(name, title, reading, pd.DataFrame(rows), png=png, svg=svg)


# ----------------------------------------------------------------------------- 3 accuracy


def pareto_front(latency_ms: Sequence[float], top1: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (lower-or-equal latency, higher accuracy),
    in order of increasing latency."""
    order = sorted(range(len(latency_ms)), key=lambda i: (latency_ms[i], -top1[i]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if top1[i] > best:
            front.append(i)
            best = top1[i]
    return front


def latency_accuracy(
    results: pd.DataFrame, labels: dict[int, str], accuracy: pd.DataFrame, accuracy_origin: str = ""
) -> Chart:
    """Median latency against ImageNet top-1 with each series' Pareto frontier."""
    name, title = "latency_accuracy", "Latency vs ImageNet top-1 accuracy"
    frame = measured(results)
    eligible = frame[
        (frame["variant"] == "separable")
        & frame["alpha"].notna()
        & frame["resolution"].notna()
        & (frame["kernel"].isna() | (frame["kernel"] == 3))
    ].copy()
    if eligible.empty:
        return no_chart(
            name,
            title,
            "no separable (MobileNet) grid model has a median "
            "latency; the standard variant has no published accuracy",
            "mnbench run --variant separable",
        )
    table = accuracy.copy()
    table["akey"] = [alpha_key(a) for a in table["alpha"]]
    table["rkey"] = [int(r) for r in table["resolution"]]
    eligible["akey"] = [alpha_key(a) for a in eligible["alpha"]]
    eligible["rkey"] = [int(r) for r in eligible["resolution"]]
    joined = eligible.merge(
        table[["akey", "rkey", "precision", "top1", "source"]],
        on=["akey", "rkey", "precision"],
        how="inner",
    )
    if joined.empty:
        precisions = ", ".join(sorted(set(eligible["precision"])))
        return no_chart(
            name,
            title,
            f"no accuracy for the measured cells ({precisions}); the "
            "reference table covers fp32 and int8 at α 1.0/0.75/0.5/0.25 × 224/192/"
            "160/128; give your own as a CSV with columns "
            "alpha,resolution,precision,top1",
            "mnbench report --accuracy YOUR.csv",
        )
    by_threads = _threads_vary(joined)
    joined["series_key"] = _series_key(joined, by_threads)
    show_precision = joined["precision"].nunique() > 1
    fig = Figure(figsize=(9.5, 6.0), layout="constrained")
    ax = fig.subplots()
    rows: list[dict[str, object]] = []
    sentences: list[str] = []
    for index, key in enumerate(_sorted_keys(joined["series_key"])):
        part = _rows_of(joined, key).reset_index(drop=True)
        series = _series_name(labels, key, show_precision)
        col = colour(index)
        lat = [float(v) for v in part["p50_ms"]]
        acc = [float(v) for v in part["top1"]]
        front = pareto_front(lat, acc)
        others = [i for i in range(len(part)) if i not in front]
        ax.scatter(
            [lat[i] for i in others],
            [acc[i] for i in others],
            s=30,
            facecolors="none",
            edgecolors=col,
            linewidths=1.0,
            zorder=2,
        )
        ax.plot(
            [lat[i] for i in front],
            [acc[i] for i in front],
            color=col,
            marker="o",
            markersize=6,
            linewidth=1.6,
            drawstyle="steps-post",
            zorder=3,
            label=f"{series}: Pareto frontier",
        )
        for i in front:
            ax.annotate(
                cell_text(part.at[i, "alpha"], part.at[i, "resolution"]),
                (lat[i], acc[i]),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
                color=col,
                fontweight="bold",
            )
        for i in range(len(part)):
            rows.append(
                {
                    "run_id": key[0],
                    "series": series,
                    "name": part.at[i, "name"],
                    "alpha": float(part.at[i, "alpha"]),
                    "resolution": int(part.at[i, "resolution"]),
                    "precision": part.at[i, "precision"],
                    "threads": part.at[i, "threads"],
                    "p50_ms": lat[i],
                    "top1": acc[i],
                    "accuracy_source": part.at[i, "source"],
                    "pareto": i in front,
                }
            )
        picks = ", ".join(cell_text(part.at[i, "alpha"], part.at[i, "resolution"]) for i in front)
        fastest, best = front[0], front[-1]
        picks += (
            f" (from {lat[fastest]:.3g} ms at {acc[fastest]:.1f} % to {lat[best]:.3g} ms "
            f"at {acc[best]:.1f} %)"
        )
        sentences.append(
            f"{series}: {len(front)} of {len(part)} cells are Pareto-optimal — {picks}"
        )
    ax.scatter(
        [],
        [],
        s=30,
        facecolors="none",
        edgecolors="#666666",
        label="dominated (slower and no more accurate than a frontier cell)",
    )
    _finish_axes(
        ax,
        "median latency (ms, log scale)",
        "ImageNet top-1 accuracy (%)",
        "Latency vs accuracy: the Pareto frontier, labelled α/resolution",
        y_log=False,
        legend="lower right",
    )
    png, svg = _render(fig, svg=True)
    sources = sorted({str(s) for s in joined["source"]})
    origin = accuracy_origin or ("; ".join(sources[:1]) + ("…" if len(sources) > 1 else ""))
    reading = (
        "Filled points joined by a step line are the Pareto frontier: for a latency "
        "budget, pick the rightmost frontier point under it. "
        + _join(sentences)
        + f". Accuracy: {origin}; the standard-convolution variant has no published "
        "accuracy per cell and is left out."
    )
    return Chart(name, title, reading, pd.DataFrame(rows), png=png, svg=svg)


# ----------------------------------------------------------------------------- 4 memory


def memory_chart(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Peak RSS (after load, overall) and model bytes (file, weights, activations) vs params."""
    name, title = "memory", "Memory vs parameters"
    frame = results.copy()
    for col in (
        "run_id",
        "params",
        "peak_rss_bytes",
        "peak_rss_load_bytes",
        "file_bytes",
        "weight_bytes",
        "peak_activation_bytes",
        "alpha",
        "resolution",
        "threads",
    ):
        frame[col] = _column(frame, col)
    for col in ("variant", "precision", "name", "status", "sha256"):
        frame[col] = _text_column(frame, col)
    frame = frame[(frame["params"] > 0) & (frame["status"] != "failed")]
    rss = frame[(frame["peak_rss_bytes"] > 0) | (frame["peak_rss_load_bytes"] > 0)]
    model_cols = ("file_bytes", "weight_bytes", "peak_activation_bytes")
    sizes = frame[frame[list(model_cols)].gt(0).any(axis=1)]
    if rss.empty and sizes.empty:
        return no_chart(
            name,
            title,
            "no measured model has a parameter count together with "
            "peak RSS or model sizes; a sweep records both",
            "mnbench run",
        )
    fig = Figure(figsize=(12.5, 5.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    sentences: list[str] = []
    by_threads = _threads_vary(rss) if not rss.empty else False
    rss = rss.assign(series_key=_series_key(rss, by_threads)) if not rss.empty else rss
    show_precision = rss["precision"].nunique() > 1 if not rss.empty else False
    if not rss.empty:
        for index, key in enumerate(_sorted_keys(rss["series_key"])):
            part = _rows_of(rss, key)
            col = colour(index)
            series = _series_name(labels, key, show_precision)
            for variant, vpart in part.groupby("variant", sort=True):
                marker = VARIANT_MARKERS.get(str(variant), OTHER_MARKER)
                overall = vpart[vpart["peak_rss_bytes"] > 0]
                load = vpart[vpart["peak_rss_load_bytes"] > 0]
                left.scatter(
                    overall["params"] / 1e6,
                    overall["peak_rss_bytes"] / MIB,
                    color=col,
                    marker=marker,
                    s=36,
                    zorder=3,
                )
                left.scatter(
                    load["params"] / 1e6,
                    load["peak_rss_load_bytes"] / MIB,
                    facecolors="none",
                    edgecolors=col,
                    marker=marker,
                    s=36,
                    zorder=3,
                )
            left.plot([], [], color=col, marker="o", linestyle="none", label=series)
            fitted = part[(part["peak_rss_bytes"] > 0) & (part["weight_bytes"] > 0)]
            if fitted["weight_bytes"].nunique() >= 2:
                slope, base = np.polyfit(
                    fitted["weight_bytes"].to_numpy(dtype=float) / MIB,
                    fitted["peak_rss_bytes"].to_numpy(dtype=float) / MIB,
                    1,
                )
                sentences.append(
                    f"{series}: peak RSS ≈ {base:.0f} MiB + {slope:.2f} × weight "
                    "MiB (least squares), the constant being the runtime and "
                    "interpreter, the slope the copies of the weights it keeps"
                )
            else:
                top = (
                    _row_at(part, "peak_rss_bytes", largest=True)
                    if (part["peak_rss_bytes"] > 0).any()
                    else None
                )
                if top is not None:
                    sentences.append(
                        f"{series}: largest peak RSS "
                        f"{float(top['peak_rss_bytes']) / MIB:.0f} MiB "
                        f"({top['name']})"
                    )
        left.scatter([], [], color="#666666", marker="o", label="peak RSS overall (filled)")
        left.scatter(
            [],
            [],
            facecolors="none",
            edgecolors="#666666",
            marker="o",
            label="peak RSS after load (hollow)",
        )
        left.set_xscale("log")
        left.set_yscale("log")
        _plain_log_ticks(left)
        left.legend(fontsize=8, loc="upper left")
    else:
        left.text(
            0.5, 0.5, "no peak RSS recorded", ha="center", va="center", transform=left.transAxes
        )
    left.set_xlabel("parameters (millions, log scale)")
    left.set_ylabel("process peak RSS (MiB, log scale)")
    left.set_title("Process memory (per run)")
    left.grid(True, which="both", alpha=0.25)
    rows_frame = frame[
        [
            c
            for c in (
                "run_id",
                "name",
                "variant",
                "precision",
                "threads",
                "params",
                "peak_rss_load_bytes",
                "peak_rss_bytes",
                "file_bytes",
                "weight_bytes",
                "peak_activation_bytes",
            )
        ]
    ]
    if not sizes.empty:
        models = sizes.drop_duplicates(subset=["name", "sha256"])
        labels_for = {
            "file_bytes": "model file",
            "weight_bytes": "weights",
            "peak_activation_bytes": "peak activations",
        }
        for index, metric in enumerate(model_cols):
            has = models[models[metric] > 0]
            hollow = metric == "file_bytes"  # drawn around the weights it nearly equals
            for variant, vpart in has.groupby("variant", sort=True):
                right.scatter(
                    vpart["params"] / 1e6,
                    vpart[metric] / MIB,
                    facecolors="none" if hollow else colour(index),
                    edgecolors=colour(index),
                    linewidths=1.4,
                    marker=VARIANT_MARKERS.get(str(variant), OTHER_MARKER),
                    s=90 if hollow else 30,
                    zorder=3,
                )
            if not has.empty:
                right.scatter(
                    [],
                    [],
                    facecolors="none" if hollow else colour(index),
                    edgecolors=colour(index),
                    marker="o",
                    label=labels_for[metric] + (" (hollow)" if hollow else ""),
                )
        for variant, marker in VARIANT_MARKERS.items():
            if (models["variant"] == variant).any():
                right.scatter([], [], marker=marker, color="#666666", label=f"{variant} variant")
        acts = models[models["peak_activation_bytes"] > 0]
        if not acts.empty:
            top = _row_at(acts, "peak_activation_bytes", largest=True)
            sentences.append(
                f"the largest peak activation is "
                f"{float(top['peak_activation_bytes']) / MIB:.1f} MiB "
                f"({top['name']})"
            )
        right.set_xscale("log")
        right.set_yscale("log")
        _plain_log_ticks(right)
        right.legend(fontsize=8, loc="upper left")
    else:
        right.text(
            0.5, 0.5, "no model sizes recorded", ha="center", va="center", transform=right.transAxes
        )
    right.set_xlabel("parameters (millions, log scale)")
    right.set_ylabel("bytes (MiB, log scale)")
    right.set_title("Model file, weights and peak activations")
    right.grid(True, which="both", alpha=0.25)
    png, svg = _render(fig, svg=False)
    reading = (
        "Left: peak resident memory of the measuring process after the session is "
        "created (hollow) and at the end (filled), circles for the separable and squares "
        "for the standard variant. Right: the model's file size, weight bytes and the "
        "largest live activations from the cost model. "
    )
    reading += (_join(sentences) + ".") if sentences else ""
    return Chart(name, title, reading, rows_frame.reset_index(drop=True), png=png, svg=svg)


# ----------------------------------------------------------------------------- 5 prediction


def prediction_chart(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Measured separable/standard latency ratio beside the MAC ratio, per cell and run."""
    name, title = "prediction", "Separable vs standard: measured vs MAC ratio"
    frame = measured(results)
    frame = frame[frame["alpha"].notna() & frame["resolution"].notna() & (frame["macs"] > 0)]
    keys = ["run_id", "alpha", "resolution", "precision", "kernel", "threads"]
    sep = frame[frame["variant"] == "separable"]
    std = frame[frame["variant"] == "standard"]
    pairs = (
        sep.merge(std, on=keys, suffixes=("_sep", "_std"), how="inner")
        if not (sep.empty or std.empty)
        else pd.DataFrame()
    )
    if pairs.empty:
        return no_chart(
            name,
            title,
            "no α × resolution cell was measured in both the separable "
            "and the standard variant in the same run",
            "mnbench run --variant separable standard",
        )
    pairs = pairs.assign(
        latency_ratio=pairs["p50_ms_sep"] / pairs["p50_ms_std"],
        mac_ratio=pairs["macs_sep"] / pairs["macs_std"],
    )
    pairs["cell"] = [
        cell_text(a, r) for a, r in zip(pairs["alpha"], pairs["resolution"], strict=True)
    ]
    pairs["kernel_value"] = [3 if math.isnan(k) else int(k) for k in pairs["kernel"]]
    by_threads = _threads_vary(pairs)
    pairs["variant"] = ""
    pairs["series_key"] = _series_key(pairs, by_threads)
    show_precision = pairs["precision"].nunique() > 1
    series_keys = _sorted_keys(pairs["series_key"])
    cells = sorted(
        set(zip(pairs["alpha"], pairs["resolution"], strict=True)), key=lambda c: (-c[0], -c[1])
    )
    n_bars = len(series_keys) + 1
    width = 0.8 / n_bars
    fig = Figure(
        figsize=(min(13.0, max(8.0, 0.35 * len(cells) * n_bars + 3.0)), 5.6), layout="constrained"
    )
    ax = fig.subplots()
    x = np.arange(len(cells))
    mac_by_cell = pairs.groupby(["alpha", "resolution"])["mac_ratio"].mean()
    mac_values = [float(mac_by_cell.loc[c]) for c in cells]
    annotate = len(cells) * n_bars <= 48
    bars = ax.bar(
        x - 0.4 + width / 2,
        mac_values,
        width,
        color="#999999",
        hatch="//",
        edgecolor="white",
        label="MAC ratio (separable / standard)",
    )
    if annotate:
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    sentences: list[str] = []
    for index, key in enumerate(series_keys):
        part = _rows_of(pairs, key)
        by_cell = {
            (float(a), float(r)): float(v)
            for a, r, v in zip(
                part["alpha"], part["resolution"], part["latency_ratio"], strict=True
            )
        }
        values = [by_cell.get((float(c[0]), float(c[1])), math.nan) for c in cells]
        series = _series_name(labels, key, show_precision)
        bars = ax.bar(
            x - 0.4 + width * (index + 1.5),
            values,
            width,
            color=colour(index),
            label=f"measured latency ratio: {series}",
        )
        if annotate:
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        lat = part["latency_ratio"].to_numpy(dtype=float)
        mac = part["mac_ratio"].to_numpy(dtype=float)
        sentences.append(
            f"{series}: measured {lat.min():.2f}–{lat.max():.2f} (median "
            f"{float(np.median(lat)):.2f}, a {1 / float(np.median(lat)):.1f}× "
            f"speed-up) where MACs predict {mac.min():.2f}–{mac.max():.2f} "
            f"({1 / float(np.median(mac)):.1f}×)"
        )
    for kernel in sorted(set(pairs["kernel_value"])):
        limit = 1.0 / kernel**2
        ax.axhline(
            limit,
            color="#000000",
            linestyle="--",
            linewidth=1.0,
            label=f"1/D_K² = {limit:.3f}: the per-layer 1/N + 1/D_K² as N grows (D_K={kernel})",
        )
    ax.set_xticks(x, [cell_text(a, r) for a, r in cells], rotation=45 if len(cells) > 8 else 0)
    ax.set_xlabel("grid cell (α/resolution)")
    ax.set_ylabel("separable / standard (ratio, lower = cheaper)")
    ax.set_title("Depthwise-separable vs standard convolution: measured latency vs MACs")
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    highest = max(
        float(np.nanmax(pairs["latency_ratio"].to_numpy(dtype=float))),
        float(np.nanmax(pairs["mac_ratio"].to_numpy(dtype=float))),
    )
    ax.set_ylim(0, highest * 1.45)  # room for the legend above the bars
    png, svg = _render(fig, svg=False)
    reading = (
        "For each cell measured in both variants in the same run, the bars set the "
        "measured latency ratio separable/standard beside the MAC ratio. "
        + _join(sentences)
        + ". The paper's prediction 1/N + 1/D_K² applies layer by "
        "layer (N output channels, D_K the kernel); the whole-model MAC ratio sits "
        "above it because the stem and the fully connected layer are the same in both "
        "variants. A measured ratio above the MAC ratio means depthwise convolutions run "
        "at lower MAC throughput than dense ones."
    )
    data = pairs[
        [
            "run_id",
            "alpha",
            "resolution",
            "precision",
            "kernel",
            "threads",
            "name_sep",
            "name_std",
            "p50_ms_sep",
            "p50_ms_std",
            "macs_sep",
            "macs_std",
            "latency_ratio",
            "mac_ratio",
        ]
    ]
    return Chart(name, title, reading, data.reset_index(drop=True), png=png, svg=svg)


# ----------------------------------------------------------------------------- 6 time share


def time_share_chart(frame: pd.DataFrame | None, labels: dict[int, str] | None = None) -> Chart:
    """Per-layer-kind share of time beside share of MACs.

    ``frame`` has one row per profiled node (or pre-summed per kind) with columns
    ``run_id, kind, time_ms, macs``; kind is one of stem, depthwise, pointwise, fc (others
    are summed as 'other').
    """
    name, title = "time_share", "Time share vs MAC share by layer kind"
    labels = labels or {}
    if frame is None or frame.empty:
        return no_chart(
            name, title, "the selected runs hold no per-layer profiles", "mnbench run --profile"
        )
    data = frame[["run_id", "kind", "time_ms", "macs"]].copy()
    data["kind"] = [k if k in LAYER_KINDS else "other" for k in data["kind"].astype(str)]
    data["time_ms"] = pd.to_numeric(data["time_ms"], errors="coerce").fillna(0.0)
    data["macs"] = pd.to_numeric(data["macs"], errors="coerce").fillna(0.0)
    summed = data.groupby(["run_id", "kind"], as_index=False)[["time_ms", "macs"]].sum()
    totals = summed.groupby("run_id")[["time_ms", "macs"]].transform("sum")
    summed["time_share"] = summed["time_ms"] / totals["time_ms"].where(totals["time_ms"] > 0)
    summed["mac_share"] = summed["macs"] / totals["macs"].where(totals["macs"] > 0)
    if summed["time_share"].isna().all():
        return no_chart(name, title, "the per-layer profiles hold no time", "mnbench run --profile")
    kinds = [k for k in (*LAYER_KINDS, "other") if k in set(summed["kind"])]
    runs = sorted({int(r) for r in summed["run_id"]})
    n_bars = len(runs) + 1
    width = 0.8 / n_bars
    fig = Figure(figsize=(9.0, 5.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(kinds))
    mac_share = summed.groupby("kind")["mac_share"].mean()
    bars = ax.bar(
        x - 0.4 + width / 2,
        [100 * float(mac_share.get(k, 0.0)) for k in kinds],
        width,
        color="#999999",
        hatch="//",
        edgecolor="white",
        label="share of MACs",
    )
    ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    sentences: list[str] = []
    for index, run_id in enumerate(runs):
        part = summed[summed["run_id"] == run_id].set_index("kind")
        shares = [100 * float(part["time_share"].get(k, 0.0)) for k in kinds]
        series = labels.get(run_id, f"run {run_id}")
        bars = ax.bar(
            x - 0.4 + width * (index + 1.5),
            shares,
            width,
            color=colour(index),
            label=f"share of time: {series}",
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        if "depthwise" in part.index:
            t = 100 * float(part.at["depthwise", "time_share"])
            m = 100 * float(part.at["depthwise", "mac_share"])
            ratio = f" ({t / m:.1f}× its MAC share)" if m > 0 else ""
            sentences.append(
                f"{series}: depthwise layers take {t:.1f} % of the time for "
                f"{m:.1f} % of the MACs{ratio}"
            )
    ax.set_xticks(x, kinds)
    ax.set_xlabel("layer kind")
    ax.set_ylabel("share (%)")
    ax.set_title("Where the time goes vs where the MACs are")
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    png, svg = _render(fig, svg=False)
    reading = (
        "Per-layer profiles summed by layer kind: a bar taller than the grey MAC bar "
        "means that kind runs below the model's average MAC throughput. "
        + (_join(sentences) + "." if sentences else "")
    )
    return Chart(name, title, reading, summed, png=png, svg=svg)


# ----------------------------------------------------------------------------- 7-9 layer probes

KERNEL_MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "P")
ROOFLINE_ROLES: dict[str, tuple[str, str]] = {
    "standard": ("s", "standard conv"),
    "depthwise": ("o", "depthwise part"),
    "pointwise": ("D", "pointwise part"),
}
LAYERS_HINT = "mnbench layers"


def _layer_rows(layers: pd.DataFrame | None) -> pd.DataFrame:
    """Layer-table rows with a measured ratio (``harness.layers.layer_table`` columns)."""
    empty: pd.DataFrame = pd.DataFrame()
    if layers is None or layers.empty or "measured_ratio" not in layers.columns:
        return empty
    frame = layers.copy()
    for column in ("measured_ratio", "predicted_ratio", "mac_ratio", "N", "D_K", "block"):
        frame[column] = _column(frame, column)
    usable = frame["measured_ratio"].notna() & (frame["measured_ratio"] > 0)
    kept: pd.DataFrame = frame[usable].reset_index(drop=True)
    return kept


def _run_label(labels: dict[int, str], run_id: object) -> str:
    return labels.get(int(_float(run_id)), f"run {int(_float(run_id))}")


def layer_ratio_chart(layers: pd.DataFrame | None, labels: dict[int, str]) -> Chart:
    """Measured separable/standard time ratio per layer against 1/N + 1/D_K², with y = x."""
    name, title = "layer_ratio", "Per layer: measured vs predicted separable/standard ratio"
    frame = _layer_rows(layers)
    if frame.empty:
        return no_chart(name, title, "the selected runs hold no layer probes", LAYERS_HINT)
    fig = Figure(figsize=(8.0, 6.0), layout="constrained")
    ax = fig.subplots()
    kernels = sorted({int(k) for k in frame["D_K"]})
    runs = sorted({int(r) for r in frame["run_id"]})
    sentences: list[str] = []
    for index, run_id in enumerate(runs):
        part = frame[frame["run_id"] == run_id]
        for k_index, kernel in enumerate(kernels):
            sub = part[part["D_K"] == kernel]
            if sub.empty:
                continue
            ax.scatter(
                sub["predicted_ratio"],
                sub["measured_ratio"],
                color=colour(index),
                marker=KERNEL_MARKERS[k_index % len(KERNEL_MARKERS)],
                s=40,
                zorder=3,
                edgecolors="white",
                linewidths=0.5,
                label=f"{_run_label(labels, run_id)}, D_K={kernel}",
            )
            for block, x, y in zip(
                sub["block"], sub["predicted_ratio"], sub["measured_ratio"], strict=True
            ):
                ax.annotate(
                    str(int(block)),
                    (float(x), float(y)),
                    textcoords="offset points",
                    xytext=(3, 3),
                    fontsize=6,
                    color="#555555",
                )
        factor = (part["measured_ratio"] / part["predicted_ratio"]).to_numpy(dtype=float)
        sentences.append(
            f"{_run_label(labels, run_id)}: measured/predicted "
            f"{float(np.nanmin(factor)):.1f}–{float(np.nanmax(factor)):.1f}× (median "
            f"{float(np.nanmedian(factor)):.1f}×)"
        )
    values = np.concatenate(
        [frame["measured_ratio"].to_numpy(dtype=float), frame["predicted_ratio"].to_numpy(float)]
    )
    low, high = float(np.nanmin(values)) / 1.3, float(np.nanmax(values)) * 1.3
    ax.plot(
        [low, high],
        [low, high],
        color="#000000",
        linestyle="--",
        linewidth=1.0,
        label="y = x (time follows MACs)",
    )
    _finish_axes(
        ax,
        "predicted ratio 1/N + 1/D_K² (log scale)",
        "measured ratio: separable time / standard time (log scale)",
        "Does the measured cost follow 1/N + 1/D_K²? (numbers: block)",
    )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    png, svg = _render(fig, svg=True)
    reading = (
        "One point per separable block, timed as single-layer probes (the standard conv, "
        "and the depthwise + pointwise pair). Points above the dashed line cost more time "
        "than their MACs predict: the depthwise part runs at a lower MAC throughput than "
        "the dense convs. " + _join(sentences) + "."
    )
    data = frame[
        [
            c
            for c in (
                "run_id",
                "device",
                "threads",
                "alpha",
                "resolution",
                "block",
                "M",
                "N",
                "D_F",
                "stride",
                "D_K",
                "predicted_ratio",
                "mac_ratio",
                "measured_ratio",
                "parts_ratio",
                "standard_ms",
                "separable_ms",
            )
            if c in frame.columns
        ]
    ]
    return Chart(name, title, reading, data.reset_index(drop=True), png=png, svg=svg)


def ratio_vs_channels_chart(layers: pd.DataFrame | None, labels: dict[int, str]) -> Chart:
    """Measured ratio against N per D_K, over the prediction curves 1/N + 1/D_K²."""
    name, title = "ratio_vs_channels", "Separable/standard ratio against output channels N"
    frame = _layer_rows(layers)
    if frame.empty:
        return no_chart(name, title, "the selected runs hold no layer probes", LAYERS_HINT)
    fig = Figure(figsize=(8.5, 5.6), layout="constrained")
    ax = fig.subplots()
    kernels = sorted({int(k) for k in frame["D_K"]})
    runs = sorted({int(r) for r in frame["run_id"]})
    n_values = frame["N"].to_numpy(dtype=float)
    n_line = np.geomspace(max(1.0, float(n_values.min()) / 1.5), float(n_values.max()) * 1.5, 60)
    sentences: list[str] = []
    for k_index, kernel in enumerate(kernels):
        ax.plot(
            n_line,
            1.0 / n_line + 1.0 / kernel**2,
            color=colour(k_index),
            linewidth=1.3,
            label=f"predicted 1/N + 1/{kernel}² (D_K={kernel})",
        )
        for r_index, run_id in enumerate(runs):
            sub = frame[(frame["D_K"] == kernel) & (frame["run_id"] == run_id)]
            if sub.empty:
                continue
            ax.scatter(
                sub["N"],
                sub["measured_ratio"],
                color=colour(k_index),
                marker=KERNEL_MARKERS[r_index % len(KERNEL_MARKERS)],
                s=36,
                zorder=3,
                edgecolors="white",
                linewidths=0.5,
                label=f"measured, D_K={kernel}: {_run_label(labels, run_id)}",
            )
            sentences.append(
                f"D_K={kernel} ({_run_label(labels, run_id)}): measured "
                f"{float(sub['measured_ratio'].min()):.2f}–{float(sub['measured_ratio'].max()):.2f}"
                f" where the prediction tends to {1 / kernel**2:.3f}"
            )
    _finish_axes(
        ax,
        "output channels N (log scale)",
        "separable / standard (log scale, lower = cheaper)",
        "Measured ratio vs N, over the curves 1/N + 1/D_K²",
        x_base=2,
        legend="upper right",
    )
    png, svg = _render(fig, svg=True)
    reading = (
        "Lines: the paper's prediction 1/N + 1/D_K² (Howard et al. 2017, eq. 5), falling "
        "towards 1/D_K² as N grows; points: the measured ratio of each block. "
        + _join(sentences)
        + "."
    )
    data = frame[[c for c in ("run_id", "block", "N", "D_K", "predicted_ratio", "measured_ratio")]]
    return Chart(name, title, reading, data.reset_index(drop=True), png=png, svg=svg)


def roofline_chart(layers: pd.DataFrame | None, labels: dict[int, str]) -> Chart:
    """Each probe layer's achieved GFLOP/s against its arithmetic intensity, under the
    device's measured compute and bandwidth ceilings (Williams et al. 2009)."""
    name, title = "roofline", "Roofline: achieved GFLOP/s vs arithmetic intensity per layer"
    if layers is None or layers.empty:
        return no_chart(name, title, "the selected runs hold no layer probes", LAYERS_HINT)
    rows: list[dict[str, object]] = []
    for record in layers.to_dict("records"):
        for role in ROOFLINE_ROLES:
            gflops = _float(record.get(f"{role}_gflop_s"))
            intensity = _float(record.get(f"{role}_intensity"))
            if gflops > 0 and intensity > 0:
                rows.append(
                    {
                        "run_id": int(_float(record["run_id"])),
                        "block": int(_float(record["block"])),
                        "D_K": int(_float(record["D_K"])),
                        "role": role,
                        "intensity_flop_per_byte": intensity,
                        "gflop_s": gflops,
                        "peak_gflop_s": _float(record.get("peak_gflop_s")),
                        "bandwidth_gb_s": _float(record.get("bandwidth_gb_s")),
                    }
                )
    data = pd.DataFrame(rows)
    if data.empty:
        return no_chart(
            name, title, "the layer probes have no times or no arithmetic intensity", LAYERS_HINT
        )
    fig = Figure(figsize=(8.5, 6.0), layout="constrained")
    ax = fig.subplots()
    runs = sorted({int(r) for r in data["run_id"]})
    x_low = float(data["intensity_flop_per_byte"].min()) / 2
    x_high = float(data["intensity_flop_per_byte"].max()) * 2
    x_line = np.geomspace(x_low, x_high, 100)
    sentences: list[str] = []
    for index, run_id in enumerate(runs):
        part = data[data["run_id"] == run_id]
        label = _run_label(labels, run_id)
        for role, (marker, role_text) in ROOFLINE_ROLES.items():
            sub = part[part["role"] == role]
            if not sub.empty:
                ax.scatter(
                    sub["intensity_flop_per_byte"],
                    sub["gflop_s"],
                    color=colour(index),
                    marker=marker,
                    s=36,
                    zorder=3,
                    edgecolors="white",
                    linewidths=0.5,
                    label=f"{role_text}: {label}",
                )
        peak = float(part["peak_gflop_s"].iloc[0])
        bandwidth = float(part["bandwidth_gb_s"].iloc[0])
        if peak > 0 and bandwidth > 0:
            ax.plot(
                x_line,
                np.minimum(peak, bandwidth * x_line),
                color=colour(index),
                linestyle="--",
                linewidth=1.2,
                label=f"ceilings: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s ({label})",
            )
            ridge = peak / bandwidth
            depthwise = part[part["role"] == "depthwise"]
            below = int((depthwise["intensity_flop_per_byte"] < ridge).sum())
            sentences.append(
                f"{label}: ridge point at {ridge:.1f} FLOP/byte; {below} of "
                f"{len(depthwise)} depthwise layers lie left of it (memory-bound), at "
                f"{float(depthwise['gflop_s'].median()) if len(depthwise) else math.nan:.1f}"
                " GFLOP/s median"
            )
            above = int((part["gflop_s"] > peak).sum())
            if above:
                sentences.append(
                    f"{above} layers run above the measured GEMM peak: numpy's BLAS is "
                    "slower than onnxruntime's kernels here, or the machine was busy "
                    "during the microbenchmark"
                )
        else:
            sentences.append(f"{label}: no measured ceilings (run without --no-limits)")
    _finish_axes(
        ax,
        "arithmetic intensity (FLOP per byte of weights + input + output, log)",
        "achieved GFLOP/s (log scale)",
        "Roofline of the layer probes",
        legend="lower right",
        legend_size=7,
    )
    png, svg = _render(fig, svg=True)
    reading = (
        "Each layer probe's achieved FLOP rate (2 × MACs / median time) against its "
        "arithmetic intensity from the cost model, under the device's measured ceilings: "
        "peak GEMM throughput and copy bandwidth, attainable = min(peak, bandwidth × "
        "intensity) (Williams et al. 2009). " + _join(sentences) + "."
    )
    return Chart(name, title, reading, data, png=png, svg=svg)


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
