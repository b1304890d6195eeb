"""Chart 10: each validated model's predicted latency (with the latency model's interval)
against its measured median (with the 95 % interval across trials), y = x and ±10 %."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from reports.charts.chart import Chart, Missing, compose, join
from reports.charts.style import colour, finish_axes

NAME = "predicted_vs_measured"
TITLE = "Latency model: predicted vs measured"
PREDICT_HINT = "mnbench predict --validate"


@dataclass(frozen=True)
class DeviceValidation:
    device: str
    points: pd.DataFrame
    """measured_ms, ci_low_ms, ci_high_ms, predicted_ms, low_ms, high_ms, error per model."""


@dataclass(frozen=True)
class PredictedVsMeasured:
    devices: tuple[DeviceValidation, ...]
    low_ms: float
    """Both axes' range, shared so y = x is the diagonal."""
    high_ms: float
    rows: pd.DataFrame


NO_VALIDATION = Missing("the selected runs hold no validation of a latency model", PREDICT_HINT)


def validation_data(validation: pd.DataFrame | None) -> PredictedVsMeasured | Missing:
    """The points per device (or why there are none)."""
    if validation is None or validation.empty:
        return NO_VALIDATION
    values = validation[["measured_ms", "predicted_ms"]].to_numpy(dtype=float)
    return PredictedVsMeasured(
        devices=tuple(
            DeviceValidation(str(device), part)
            for device, part in validation.groupby("device", sort=True)
        ),
        low_ms=float(np.nanmin(values)) / 1.3,
        high_ms=float(np.nanmax(values)) * 1.3,
        rows=validation.reset_index(drop=True),
    )


def draw_validation(data: PredictedVsMeasured) -> Figure:
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    ax = fig.subplots()
    for index, device in enumerate(data.devices):
        part = device.points
        measured_ms = part["measured_ms"].to_numpy(dtype=float)
        predicted_ms = part["predicted_ms"].to_numpy(dtype=float)
        ax.errorbar(
            measured_ms,
            predicted_ms,
            xerr=[measured_ms - part["ci_low_ms"], part["ci_high_ms"] - measured_ms],
            yerr=[predicted_ms - part["low_ms"], part["high_ms"] - predicted_ms],
            fmt="o",
            color=colour(index),
            markersize=5,
            elinewidth=0.8,
            capsize=2,
            label=device.device,
        )
    low, high = data.low_ms, data.high_ms
    line = np.geomspace(low, high, 20)
    ax.plot(line, line, color="#000000", linestyle="--", linewidth=1.0, label="y = x")
    ax.fill_between(line, line / 1.1, line * 1.1, color="#999999", alpha=0.2, label="±10 %")
    finish_axes(
        ax,
        "measured median latency, ms (log scale; bars: 95 % interval across trials)",
        "predicted latency, ms (log scale; bars: the model's interval)",
        "Held-out models: the kernel-level model against measurement",
    )
    minor = FuncFormatter(lambda value, _pos: f"{value:g}")
    ax.xaxis.set_minor_formatter(minor)  # a narrow range has minor ticks only
    ax.yaxis.set_minor_formatter(minor)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    return fig


def device_sentence(device: DeviceValidation) -> str:
    error = np.abs(device.points["error"].to_numpy(dtype=float))
    return (
        f"{device.device}: {100 * float(np.mean(error <= 0.05)):.0f} % within ±5 %, "
        f"{100 * float(np.mean(error <= 0.10)):.0f} % within ±10 % of "
        f"{len(device.points)} models"
    )


def validation_reading(data: PredictedVsMeasured) -> str:
    return (
        "One point per validated model (mnbench predict --validate), none of them measured "
        "for the fit. " + join([device_sentence(d) for d in data.devices]) + "."
    )


def predicted_vs_measured_chart(validation: pd.DataFrame | None) -> Chart:
    """Each validated model's predicted latency (with the model's interval) against its
    measured median (with the 95 % interval across trials), y = x and a ±10 % band."""
    return compose(
        NAME, TITLE, validation_data(validation), draw_validation, validation_reading, svg=True
    )
