"""How every chart of the report looks: the palette, markers, the axis finish, log ticks and
rendering to bytes.

Drawing uses matplotlib's object API (a ``Figure`` rendered by Agg, no pyplot state) and the
Okabe–Ito colour-blind-safe palette. Labels are users' text, so mathtext is off: a '$' in a
run label is a dollar sign and cannot break a chart.
"""

from __future__ import annotations

import io
from typing import Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

matplotlib.use("Agg")
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
KERNEL_MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "P")
DPI = 110

LegendLoc = Literal["upper left", "upper right", "lower left", "lower right", "best"]


def colour(index: int) -> str:
    """The palette's colour for the series at ``index`` (cycling)."""
    return OKABE_ITO[index % len(OKABE_ITO)]


def render(fig: Figure, svg: bool) -> tuple[bytes, bytes | None]:
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


def plain_log_ticks(ax: Axes) -> None:
    """Log axes labelled 0.5, 1, 10, 100 rather than 10⁰ (read at a glance)."""
    formatter = FuncFormatter(lambda value, _pos: f"{value:g}")
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_formatter(formatter)


def finish_axes(
    ax: Axes,
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    log: bool = True,
    x_base: int = 10,
    y_log: bool = True,
    legend: LegendLoc | None = "upper left",
    legend_size: int = 8,
) -> None:
    """The common finish of a log-log (or log-x) chart: scales, plain ticks, labels, grid,
    and the legend (none when ``legend`` is None). ``log=False`` keeps linear axes (an
    empty panel that only says what is missing)."""
    if log:
        ax.set_xscale("log", base=x_base)
        if y_log:
            ax.set_yscale("log")
        plain_log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if legend is not None:
        ax.legend(fontsize=legend_size, loc=legend)
