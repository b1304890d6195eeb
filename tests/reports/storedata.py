"""Fill a real results store with synthetic runner documents (schema mnbench.runner/1).

Used by the report tests that go through ``results.store.Store`` and by
``benchmarks/report.py``. Latencies follow a power law in MACs per device so the charts have
something true to show; samples are seeded, so the same call gives the same database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from results.store import ModelRecord, Store
from tests.reports.frames import ALPHAS, MACS_1_224, PARAMS_1, RESOLUTIONS, model_name


def runner_document(samples_ms: Sequence[float], runtime: str, params: float) -> dict[str, object]:
    """A successful runner document with the given samples and plausible memory figures."""
    return {
        "schema": "mnbench.runner/1",
        "status": "ok",
        "error": None,
        "model": {"path": "model.onnx", "file_bytes": int(params * 4), "sha256": None},
        "runtime": {"name": "onnxruntime", "version": runtime},
        "timings": {
            "session_create_ms": 15.0,
            "first_inference_ms": 3 * samples_ms[0],
            "warmup_iterations": 5,
            "measure_s": 1.0,
        },
        "samples_ms": list(samples_ms),
        "reported_ms": None,
        "iterations": len(samples_ms),
        "stop_reason": "ci_target",
        "settings": {"min_samples": 20, "max_samples": 1000, "seed": 0},
        "memory": {
            "peak_rss_after_load_bytes": int(40e6 + 4.4 * params),
            "peak_rss_end_bytes": int(42e6 + 8.8 * params),
            "source": "VmHWM",
        },
        "profile": None,
    }


def add_grid_run(
    store: Store,
    *,
    device: str,
    runtime: str,
    label: str,
    speed: float,
    seed: int,
    variants: Sequence[str] = ("separable",),
    trials: int = 2,
    samples: int = 30,
    fail: Sequence[tuple[float, int]] = (),
) -> int:
    """One run over the 16-cell grid (per variant); cells in ``fail`` get a failed trial."""
    rng = np.random.default_rng(seed)
    run_id = store.create_run(
        device=device,
        device_kind="local",
        device_facts={
            "cpu_model": f"{device} test CPU",
            "logical_cores": 4,
            "cpus": [{"cpu": i, "max_khz": 3_000_000, "governor": "performance"} for i in range(4)],
        },
        config={"threads": 4},
        harness_version="0.1.0",
        runtime_version=runtime,
        label=label,
    )
    for variant in variants:
        for alpha in ALPHAS:
            for resolution in RESOLUTIONS:
                macs = MACS_1_224[variant] * alpha**2 * (resolution / 224) ** 2
                params = PARAMS_1[variant] * alpha**2
                name = model_name(alpha, resolution, variant)
                sha = f"{name}-sha256"
                store.upsert_model(
                    ModelRecord(
                        sha256=sha,
                        name=name,
                        alpha=alpha,
                        resolution=resolution,
                        variant=variant,
                        kernel=3,
                        precision="fp32",
                        macs=int(macs),
                        params=int(params),
                        weight_bytes=int(params * 4),
                        peak_activation_bytes=int(32 * alpha * resolution**2),
                        file_bytes=int(params * 4 + 20_000),
                    )
                )
                p50 = speed * (0.2 + 0.01 * (macs / 1e6) ** 0.9)
                for trial in range(trials):
                    if (alpha, resolution) in fail and trial == 0:
                        store.add_measurement(
                            run_id=run_id,
                            model_sha256=sha,
                            config={"threads": 4},
                            trial=trial,
                            status="failed",
                            reason="runner exited with code 1",
                            document=None,
                        )
                        continue
                    values = p50 * (1 + 0.01 * rng.standard_normal(samples))
                    store.add_measurement(
                        run_id=run_id,
                        model_sha256=sha,
                        config={"threads": 4},
                        trial=trial,
                        status="ok",
                        reason=None,
                        document=runner_document(values.tolist(), runtime, params),
                    )
    store.set_run_status(run_id, "complete")
    return run_id


def make_store(
    path: Path,
    runs: int = 2,
    variants: Sequence[str] = ("separable",),
    trials: int = 2,
    samples: int = 30,
) -> list[int]:
    """A database at ``path`` with ``runs`` grid runs on alternating devices and runtimes."""
    devices = (("desktop", "1.31.1", 1.0), ("board", "1.17.0", 6.0))
    ids: list[int] = []
    with Store.open(path) as store:
        for index in range(runs):
            device, runtime, speed = devices[index % 2]
            ids.append(
                add_grid_run(
                    store,
                    device=device,
                    runtime=runtime,
                    label=f"run{index + 1}",
                    speed=speed * (1 + 0.1 * (index // 2)),
                    seed=index,
                    variants=variants,
                    trials=trials,
                    samples=samples,
                    fail=((1.0, 128),) if index == 0 else (),
                )
            )
    return ids
