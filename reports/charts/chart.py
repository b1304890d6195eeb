"""The ``Chart`` value every chart module returns, and the shared words of a reading.

A ``Chart`` carries the rendered PNG (and SVG where vectors help), the data behind it as a
frame (written as CSV) and a one-paragraph reading generated from the data. When there is
nothing to draw it carries no image but the reason and the command that would produce the
data, so the report never shows an empty or broken image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pandas as pd
from matplotlib.figure import Figure

from reports.charts.style import render


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


@dataclass(frozen=True)
class Missing:
    """Why a chart has no data, and the command that would produce it."""

    reason: str
    hint: str


class ChartData(Protocol):
    """What every chart's data value carries: the rows written as its CSV."""

    @property
    def rows(self) -> pd.DataFrame: ...


Data = TypeVar("Data", bound=ChartData)


def compose(
    name: str,
    title: str,
    data: Data | Missing,
    draw: Callable[[Data], Figure],
    reading: Callable[[Data], str],
    *,
    svg: bool,
) -> Chart:
    """A chart from its parts: the drawing rendered (PNG, and SVG when asked), the reading
    and the data's rows; no image but the reason and the hint when the data is missing."""
    if isinstance(data, Missing):
        return no_chart(name, title, data.reason, data.hint)
    png, vector = render(draw(data), svg=svg)
    return Chart(name, title, reading(data), data.rows, png=png, svg=vector)


def no_chart(name: str, title: str, missing: str, hint: str) -> Chart:
    """A chart without data: the reason and what to run instead of an image."""
    return Chart(
        name=name, title=title, reading="", data=pd.DataFrame(), missing=missing, hint=hint
    )


def as_float(value: object) -> float:
    """A cell as float; None, NaN, strings that are not numbers -> NaN."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return result


def join(items: Sequence[str], limit: int = 4) -> str:
    """Sentences of a reading joined by '; ', the fifth and later counted, not listed."""
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append(f"and {len(items) - limit} more")
    return "; ".join(shown)


def alpha_text(alpha: float) -> str:
    """0.75 -> '0.75', 1 -> '1.0' (the spelling of the TF-Slim model names)."""
    text = f"{float(alpha):g}"
    return text if "." in text else text + ".0"


def cell_text(alpha: float, resolution: float) -> str:
    """The label of one grid cell: ``α/resolution``, e.g. ``0.75/160``."""
    return f"{alpha_text(alpha)}/{int(resolution)}"


def config_text(variant: str, precision: str, kernel: float, threads: float) -> str:
    """A configuration as words: 'separable fp32, 4 threads' (+ 'D_K=5' when not 3)."""
    parts = [p for p in (variant, precision) if p]
    text = " ".join(parts)
    if not math.isnan(kernel) and int(kernel) != 3:
        text += f", D_K={int(kernel)}"
    if not math.isnan(threads) and threads > 0:
        text += f", {int(threads)} thread{'s' if int(threads) != 1 else ''}"
    return text
