"""The latency model's frames for the report: per-block predicted cost ratios beside the
measured layer probes, and predicted against measured whole-model latency.

Both read the newest stored latency model (``harness.predict.latency_model``) of each device ×
threads of
the selected runs; a device without one contributes nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from harness.predict.latency_model import FittedModel
    from results.store import Store

VALIDATE_LABEL = "predict-validate"
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


def _model(store: Store, device: str, threads: int) -> FittedModel | None:
    from harness.predict.latency_model import FittedModel

    found = store.latest_latency_model(device=device, threads=threads, precision="fp32")
    return FittedModel.from_json(found[3]) if found else None


def predicted_layer_ratios(store: Store, layers: pd.DataFrame) -> pd.DataFrame:
    """``harness.predict.latency_model.block_ratios`` for every device × threads × α ×
    resolution × D_K of a layer table (``mobilenet.layers.layer_table``), one frame
    (``RATIO_COLUMNS``)."""
    import pandas as pd

    from harness.predict.latency_model import RATIO_COLUMNS, block_ratios

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
            model = _model(store, device, threads)
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

    from harness.predict.latency_model import predict, relative_error, trial_ci

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
        model = _model(store, str(record["device"]), int(threads))
        if model is None:
            continue
        p = predict(
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
