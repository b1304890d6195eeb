"""The latency model's tables: per block the predicted separable / standard cost ratio, and
the report's frames (the ratios beside the measured layer probes, predicted against measured
whole-model latency), computed here and handed to ``reports.build`` as data.

**The cost ratio**: per block, the predicted separable / standard time from the fitted
kernels, and a roofline version (Williams et al. 2009) from the device's GEMM and copy
ceilings, beside 1/N + 1/D_K² (Howard et al. 2017, eq. 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from harness.predict.estimator import FittedModel
from harness.predict.kernels import model_kernels, roofline_ms
from harness.predict.prediction import predict_variant
from harness.predict.stored import latest_model
from harness.predict.validation import VALIDATE_LABEL, relative_error, trial_ci

if TYPE_CHECKING:
    import pandas as pd

    from results.store import Store

RATIO_COLUMNS: Final[tuple[str, ...]] = (
    "device",
    "threads",
    "alpha",
    "resolution",
    "D_K",
    "block",
    "M",
    "N",
    "D_F",
    "stride",
    "paper_ratio",
    "mac_ratio",
    "predicted_ratio",
    "roofline_ratio",
    "separable_ms",
    "standard_ms",
)


def block_ratios(
    model: FittedModel, alpha: float, resolution: int, kernels: Sequence[int] = (3,)
) -> pd.DataFrame:
    """Per block: separable / standard time predicted by the fitted kernels, and by the
    roofline of the device's measured ceilings (NaN without them), beside 1/N + 1/D_K² and
    the exact MAC ratio. One row per D_K × block, columns ``RATIO_COLUMNS``."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    peak, bandwidth = model.provenance.peak_gflop_s, model.provenance.bandwidth_gb_s
    for dk in kernels:
        separable = model_kernels(alpha, resolution, "separable", dk)
        standard = model_kernels(alpha, resolution, "standard", dk)
        for block in range(1, 14):
            sep = [k for k in separable if k.block == block]
            std = [k for k in standard if k.block == block]
            sep_ms = sum(model.kernel_ms(k) for k in sep)
            std_ms = sum(model.kernel_ms(k) for k in std)
            roof = math.nan
            if peak and bandwidth:
                roof = sum(roofline_ms(k, peak, bandwidth) for k in sep) / sum(
                    roofline_ms(k, peak, bandwidth) for k in std
                )
            dw = sep[0]
            records.append(
                {
                    "device": model.scope.device,
                    "threads": model.scope.threads,
                    "alpha": float(alpha),
                    "resolution": int(resolution),
                    "D_K": int(dk),
                    "block": block,
                    "M": dw.in_channels,
                    "N": std[0].out_channels,
                    "D_F": dw.in_size,
                    "stride": dw.stride,
                    "paper_ratio": 1.0 / std[0].out_channels + 1.0 / dk**2,
                    "mac_ratio": sum(k.macs for k in sep) / std[0].macs,
                    "predicted_ratio": sep_ms / std_ms if std_ms > 0 else math.nan,
                    "roofline_ratio": roof,
                    "separable_ms": sep_ms,
                    "standard_ms": std_ms,
                }
            )
    frame: pd.DataFrame = pd.DataFrame(records, columns=list(RATIO_COLUMNS))
    return frame


VALIDATION_COLUMNS: tuple[str, ...] = (
    "run_id",
    "device",
    "threads",
    "name",
    "alpha",
    "resolution",
    "variant",
    "kernel",
    "predicted_ms",
    "low_ms",
    "high_ms",
    "measured_ms",
    "ci_low_ms",
    "ci_high_ms",
    "trials",
    "error",
)


def predicted_layer_ratios(store: Store, layers: pd.DataFrame) -> pd.DataFrame:
    """``block_ratios`` for every device × threads × α × resolution × D_K of a layer table
    (``mobilenet.layers.layer_table``), one frame (``RATIO_COLUMNS``), each by the device's
    newest latency model (a device without one contributes nothing)."""
    import pandas as pd

    frames: list[pd.DataFrame] = []
    if not layers.empty:
        cells: dict[tuple[str, int, float, int], set[int]] = {}
        for record in layers.to_dict("records"):
            threads = record.get("threads")
            if threads is None or (isinstance(threads, float) and math.isnan(threads)):
                continue
            key = (
                str(record["device"]),
                int(threads),
                float(record["alpha"]),
                int(record["resolution"]),
            )
            cells.setdefault(key, set()).add(int(record["D_K"]))
        for (device, threads, alpha, resolution), kernels in sorted(cells.items()):
            model = latest_model(store, device, threads)
            if model is not None:
                frames.append(block_ratios(model, alpha, resolution, tuple(sorted(kernels))))
    if not frames:
        empty: pd.DataFrame = pd.DataFrame(columns=list(RATIO_COLUMNS))
        return empty
    joined: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return joined


def validation_frame(store: Store, run_ids: list[int]) -> pd.DataFrame:
    """One row per whole model of the selected ``mnbench predict --validate`` runs: the
    prediction of the device's newest latency model and the measured median over trials
    with its 95 % interval (``VALIDATION_COLUMNS``)."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    chosen = [r for r in run_ids if store.get_run(r).label == VALIDATE_LABEL]
    results = store.results_frame(chosen) if chosen else None
    for record in [] if results is None else results.to_dict("records"):
        medians = [float(m) for m in (record.get("trial_medians_ms") or []) if m is not None]
        if not medians or record.get("variant") not in ("separable", "standard"):
            continue
        threads = record.get("threads")
        if threads is None or (isinstance(threads, float) and math.isnan(threads)):
            continue
        model = latest_model(store, str(record["device"]), int(threads))
        if model is None:
            continue
        p = predict_variant(
            model,
            float(record["alpha"]),
            int(record["resolution"]),
            str(record["variant"]),
            int(record["kernel"]),
        )
        centre, low, high = trial_ci(medians)
        records.append(
            {
                "run_id": int(record["run_id"]),
                "device": record["device"],
                "threads": int(threads),
                "name": record["name"],
                "alpha": float(record["alpha"]),
                "resolution": int(record["resolution"]),
                "variant": record["variant"],
                "kernel": int(record["kernel"]),
                "predicted_ms": p.latency_ms,
                "low_ms": p.low_ms,
                "high_ms": p.high_ms,
                "measured_ms": centre,
                "ci_low_ms": low,
                "ci_high_ms": high,
                "trials": len(medians),
                "error": relative_error(p.latency_ms, centre),
            }
        )
    frame: pd.DataFrame = pd.DataFrame(records, columns=list(VALIDATION_COLUMNS))
    return frame


def report_frames(
    store: Store, run_ids: list[int], layers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's frames (``reports.build.PredictionFrames``): ``predicted_layer_ratios``
    of the layer table and ``validation_frame`` of the runs."""
    return predicted_layer_ratios(store, layers), validation_frame(store, run_ids)
