"""Builders of runs/results frames in the shape ``results.store`` returns them.

The report is a pure function of (runs_frame, results_frame, accuracy table); these builders
make such frames with plausible MobileNetV1 numbers (MACs and parameters scale with α² and
resolution² from the TF-Slim 1.0/224 totals) so chart and HTML tests need no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from results.store import RESULT_COLUMNS as STORE_RESULT_COLUMNS
from results.store import RESULT_EXTRA_COLUMNS

ALPHAS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
RESOLUTIONS: tuple[int, ...] = (224, 192, 160, 128)
# The store's own column lists: these frames have exactly the shape of Store.results_frame.
RESULT_COLUMNS: tuple[str, ...] = STORE_RESULT_COLUMNS + RESULT_EXTRA_COLUMNS
MACS_1_224 = {"separable": 568.74e6, "standard": 4866e6}
PARAMS_1 = {"separable": 4.233e6, "standard": 29.3e6}


def model_name(
    alpha: float, resolution: int, variant: str = "separable", precision: str = "fp32"
) -> str:
    text = f"{alpha:g}" if "." in f"{alpha:g}" else f"{alpha:g}.0"
    name = f"mobilenet_v1_{text}_{resolution}"
    if variant != "separable":
        name += f"_{variant}"
    if precision != "fp32":
        name += f"_{precision}"
    return name


def result_row(
    run_id: int,
    device: str,
    runtime: str,
    alpha: float,
    resolution: int,
    *,
    variant: str = "separable",
    precision: str = "fp32",
    threads: int = 4,
    speed: float = 1.0,
    status: str = "ok",
    flags: str = "",
    label: str = "",
) -> dict[str, object]:
    """One aggregated result row; latency follows a power law with exponent 0.85 in MACs."""
    macs = MACS_1_224[variant] * alpha**2 * (resolution / 224) ** 2
    params = PARAMS_1[variant] * alpha**2
    p50 = speed * (0.3 + 0.02 * (macs / 1e6) ** 0.85) * (0.6 if precision == "int8" else 1.0)
    if variant == "standard":
        p50 *= 2.8 / (MACS_1_224["standard"] / MACS_1_224["separable"]) ** 0.15
    failed = status == "failed"
    nan = math.nan
    return {
        "run_id": run_id,
        "device": device,
        "runtime_version": runtime,
        "name": model_name(alpha, resolution, variant, precision),
        "alpha": alpha,
        "resolution": resolution,
        "variant": variant,
        "kernel": 3,
        "precision": precision,
        "threads": threads,
        "trials": 5,
        "p50_ms": nan if failed else p50,
        "p90_ms": nan if failed else p50 * 1.05,
        "p99_ms": nan if failed else p50 * 1.1,
        "mean_ms": nan if failed else p50 * 1.01,
        "std_ms": nan if failed else p50 * 0.02,
        "min_ms": nan if failed else p50 * 0.97,
        "ci_low_ms": nan if failed else p50 * 0.99,
        "ci_high_ms": nan if failed else p50 * 1.01,
        "samples": 0 if failed else 200,
        "peak_rss_bytes": nan if failed else 40e6 + 2.2 * params * 4,
        "load_ms": 12.0,
        "first_ms": p50 * 3,
        "macs": macs,
        "params": params,
        "status": status,
        "label": label,
        "device_kind": "local",
        "sha256": f"sha-{alpha:g}-{resolution}-{variant}-{precision}",
        "cpus": "0-3",
        "max_ms": nan if failed else p50 * 1.3,
        "cv": 0.02,
        "flags": flags,
        "failed_trials": 5 if failed else 0,
        "peak_rss_load_bytes": nan if failed else 38e6 + 1.1 * params * 4,
        "weight_bytes": params * 4,
        "peak_activation_bytes": 32 * alpha * resolution**2 * 4 / 4,
        "file_bytes": params * 4 + 20_000,
        "trial_medians_ms": [p50] * 5,
    }


def results_frame(rows: Iterable[dict[str, object]]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame.from_records(list(rows), columns=list(RESULT_COLUMNS))
    return frame


def grid_rows(
    run_id: int,
    device: str,
    runtime: str,
    *,
    variants: Sequence[str] = ("separable",),
    precisions: Sequence[str] = ("fp32",),
    speed: float = 1.0,
    label: str = "",
) -> list[dict[str, object]]:
    return [
        result_row(run_id, device, runtime, a, r, variant=v, precision=p, speed=speed, label=label)
        for v in variants
        for p in precisions
        for a in ALPHAS
        for r in RESOLUTIONS
    ]


def run_row(
    run_id: int, device: str, runtime: str, label: str = "", facts: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "run_id": run_id,
        "label": label,
        "device": device,
        "device_kind": "local",
        "created_at": f"2025-01-0{run_id}T10:00:00+00:00",
        "harness_version": "0.1.0",
        "runtime_version": runtime,
        "device_facts": facts
        if facts is not None
        else {
            "cpu_model": f"{device} CPU",
            "cores": 8,
            "os": "Linux",
            "governor": "performance",
            "max_freq_mhz": [3600, 3600, 2400, 2400],
        },
    }


def runs_frame(rows: Iterable[dict[str, object]]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame.from_records(list(rows))
    return frame


def two_device_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run 1 on a desktop (both variants, one failed and one unstable cell) and run 2 on a
    board (separable fp32 and int8)."""
    rows = grid_rows(1, "desktop", "1.31.1", variants=("separable", "standard"), label="base")
    rows[3] = result_row(
        1, "desktop", "1.31.1", 1.0, 128, status="failed", flags="no_samples", label="base"
    )
    rows[5] = dict(rows[5], flags="high_cv,far_max", status="partial", failed_trials=1)
    rows += grid_rows(2, "rpi4", "1.17.0", precisions=("fp32", "int8"), speed=6.0, label="board")
    runs = runs_frame(
        [
            run_row(1, "desktop", "1.31.1", "base"),
            run_row(
                2,
                "rpi4",
                "1.17.0",
                "board",
                facts={
                    "cpu_model": "Cortex-A72",
                    "cores": 4,
                    "governor": "ondemand",
                    "kernel": "6.1.0-rpi7",
                    "thermal_c": {"cpu": 51.5},
                },
            ),
        ]
    )
    return runs, results_frame(rows)
