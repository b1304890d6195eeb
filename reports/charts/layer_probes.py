"""What the layer-probe charts share: the layer table's usable rows, joined with the
latency model's and the roofline's ratio per block, and how those two are drawn and read."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from reports.charts.chart import Missing
from reports.charts.series import float_column

LAYERS_HINT = "mnbench layers"
NO_PROBES = Missing("the selected runs hold no layer probes", LAYERS_HINT)
MODEL_RATIO_KEYS: tuple[str, ...] = ("device", "threads", "alpha", "resolution", "D_K", "block")


def layer_rows(layers: pd.DataFrame | None) -> pd.DataFrame:
    """Layer-table rows with a measured ratio (``mobilenet.layers.layer_table`` columns)."""
    empty: pd.DataFrame = pd.DataFrame()
    if layers is None or layers.empty or "measured_ratio" not in layers.columns:
        return empty
    frame = layers.copy()
    for column in ("measured_ratio", "predicted_ratio", "mac_ratio", "N", "D_K", "block"):
        frame[column] = float_column(frame, column)
    usable = frame["measured_ratio"].notna() & (frame["measured_ratio"] > 0)
    kept: pd.DataFrame = frame[usable].reset_index(drop=True)
    return kept


def with_model_ratios(frame: pd.DataFrame, model_ratios: pd.DataFrame | None) -> pd.DataFrame:
    """The layer rows with the latency model's ``model_ratio`` and ``roofline_ratio``
    (``harness.predict.frames.block_ratios``) of the same device, threads, cell, D_K and
    block."""
    if model_ratios is None or model_ratios.empty or frame.empty:
        plain: pd.DataFrame = frame.assign(model_ratio=math.nan, roofline_ratio=math.nan)
        return plain
    right = model_ratios[[*MODEL_RATIO_KEYS, "predicted_ratio", "roofline_ratio"]].rename(
        columns={"predicted_ratio": "model_ratio"}
    )
    left = frame.copy()
    for key in ("threads", "resolution", "D_K", "block"):
        left[key] = left[key].astype("float64")
        right = right.assign(**{key: right[key].astype("float64")})
    merged: pd.DataFrame = left.merge(right, on=list(MODEL_RATIO_KEYS), how="left")
    return merged


def probe_points(layers: pd.DataFrame | None, model_ratios: pd.DataFrame | None) -> pd.DataFrame:
    """The points of the ratio charts: usable layer rows with the model's ratios."""
    return with_model_ratios(layer_rows(layers), model_ratios)


def draw_model_ratios(ax: Axes, frame: pd.DataFrame, x: str) -> None:
    """Hollow diamonds: the latency model's ratio; crosses: the roofline's."""
    shown = frame[frame["model_ratio"].notna()]
    if shown.empty:
        return
    ax.scatter(
        shown[x],
        shown["model_ratio"],
        facecolors="none",
        edgecolors="#000000",
        marker="D",
        s=34,
        zorder=4,
        label="latency model (mnbench predict): fitted kernels",
    )
    roof = shown[shown["roofline_ratio"].notna()]
    if not roof.empty:
        ax.scatter(
            roof[x],
            roof["roofline_ratio"],
            color="#777777",
            marker="x",
            s=30,
            zorder=4,
            label="roofline of the measured GEMM and copy ceilings",
        )


def model_sentence(frame: pd.DataFrame) -> str:
    """How close the latency model's ratio comes to the measured one ('' without a model)."""
    paired = frame[frame["model_ratio"].notna() & frame["measured_ratio"].notna()]
    if paired.empty:
        return ""
    error = (paired["model_ratio"] / paired["measured_ratio"] - 1).abs().to_numpy(dtype=float)
    return (
        f"; the device's fitted kernels predict the measured ratio within "
        f"{100 * float(np.nanmedian(error)):.0f} % (median over {len(paired)} blocks)"
    )
