"""Latency models from stored runs: the training rows, profiled layers and scale read back
from the store, a fit made from them, and the fitted models kept there.

A fit is a pure function of its runs (``fit_from_runs``: the same runs give the same model),
so ``mnbench predict --from-runs`` refits without measuring. The timed runs (``FIT_LABEL``)
give the rows and the median/minimum scale, the profile run (``PROFILE_LABEL``) the training
whole models' per-node times.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from harness.predict.estimator import (
    FittedModel,
    KernelLatencyModel,
    Provenance,
    Scope,
    finite_float,
)
from harness.predict.kernels import CONV_KINDS, Kernel, Row, probe_graph_kernels, variant_kernels
from mobilenet.errors import UserError
from results.rows import load_stored_json, stored_data_error

if TYPE_CHECKING:
    import pandas as pd

    from results.store import Store

FIT_LABEL: Final = "predict-fit"
PROFILE_LABEL: Final = "predict-profile"
WHOLE_VARIANTS: Final = ("separable", "standard")


def rows_from_frames(
    probes: pd.DataFrame, results: pd.DataFrame, detect: bool, statistic: str = "min_ms"
) -> list[Row]:
    """Training rows from ``Store.probes_frame`` (layer probes of any role) and
    ``Store.results_frame`` (whole generated fp32 models), timed by ``statistic``; cells
    without it are left out. Kernels are rebuilt from the stored facts (and their layouts
    detected when ``detect``)."""
    rows: list[Row] = []
    for record in probes.to_dict("records"):
        value = finite_float(record.get(statistic))
        if value is None or value <= 0:
            continue
        name, kernels, count, moved = probe_graph_kernels(
            float(record["alpha"]),
            int(record["resolution"]),
            int(record["kernel"]),
            int(record["block"]),
            str(record["role"]),
            detect,
        )
        rows.append(Row(kernels, value, name, False, count, moved, str(record["sha256"])))
    for record in results.to_dict("records"):
        value = finite_float(record.get(statistic))
        variant = record.get("variant")
        if value is None or value <= 0 or variant not in WHOLE_VARIANTS:
            continue
        if record.get("precision") not in (None, "fp32"):
            continue
        kernels, count, moved = variant_kernels(
            float(record["alpha"]),
            int(record["resolution"]),
            str(variant),
            int(record["kernel"]),
            detect,
        )
        rows.append(
            Row(kernels, value, str(record["name"]), True, count, moved, str(record["sha256"]))
        )
    return rows


def profiled_layers(
    profiles: pd.DataFrame, results: pd.DataFrame, detect: bool
) -> list[tuple[Kernel, float]]:
    """The training whole models' layers with their in-network times, from
    ``Store.profiles_frame`` (per-layer sums of the runner's per-node profiles, median over
    trials) and ``Store.results_frame`` (which generated model each sha256 is): (kernel, ms),
    for every conv layer and the FC; layers no kernel is named after are left out."""
    specs: dict[str, tuple[float, int, str, int]] = {}
    for record in results.to_dict("records"):
        if record.get("variant") in WHOLE_VARIANTS and record.get("precision") in (None, "fp32"):
            specs[str(record["sha256"])] = (
                float(record["alpha"]),
                int(record["resolution"]),
                str(record["variant"]),
                int(record["kernel"]),
            )
    found: list[tuple[Kernel, float]] = []
    for record in profiles.to_dict("records"):
        spec = specs.get(str(record["sha256"]))
        value = finite_float(record.get("time_ms"))
        if spec is None or value is None or value <= 0:
            continue
        kernels, _, _ = variant_kernels(*spec, detect)
        named = {item.name: item for item in kernels if item.kind in (*CONV_KINDS, "fc")}
        item = named.get(str(record["layer"]))
        if item is not None:
            found.append((item, value))
    return found


def median_over_min(measurements: pd.DataFrame) -> float:
    """The median over measurements (one fresh process each, ``Store.measurements_frame``)
    of median / minimum time: how far a typical sample sits above the fastest one in its
    process (the fit prices the fastest; predictions are of medians). Per process, so a
    cell measured once in a slow spell and once in a fast one does not count the spell."""
    ratios = [
        float(p50) / float(low)
        for p50, low in zip(measurements["p50_ms"], measurements["min_ms"], strict=True)
        if finite_float(p50) and finite_float(low) and float(low) > 0
    ]
    return float(statistics.median(ratios)) if ratios else 1.0


def detects_here(store: Store, run_ids: Sequence[int]) -> bool:
    """Kernel layouts can be read from this machine's onnxruntime when the device is of the
    same architecture (the local machine, or a board of the same kind). The architecture is
    the one the runner reported where it measured (``host_before.machine`` of each
    measurement: an aarch64 board emulated on an x86-64 host reports aarch64), the run's
    device facts only for runs without such a report."""
    import platform

    machines = set()
    for run_id in run_ids:
        reported = measured_machines(store, run_id)
        machines |= reported or {_machine(store.get_run(run_id).device_facts)}
    return machines == {platform.machine()}


def measured_machines(store: Store, run_id: int) -> set[str]:
    """The machines the runner reported in a run's measurements (empty when none did)."""
    found: set[str] = set()
    for row in store.measurement_rows([run_id]):
        try:
            document = json.loads(row.get("document") or "{}")
        except (ValueError, RecursionError):
            continue
        host = document.get("host_before") if isinstance(document, dict) else None
        machine = host.get("machine") if isinstance(host, dict) else None
        if isinstance(machine, str) and machine:
            found.add(machine)
    return found


def _machine(facts: Any) -> str:
    """The device's architecture from its facts (``machine``, or the kernel string's last
    word: ``Linux 6.1.0 aarch64``)."""
    machine = facts.get("machine")
    if isinstance(machine, str) and machine:
        return machine
    kernel = facts.get("kernel")
    return kernel.split()[-1] if isinstance(kernel, str) and kernel.split() else ""


def training_rows(store: Store, run_ids: Sequence[int]) -> list[Row]:
    """The training rows of stored runs (as the fit reads them)."""
    results = store.results_frame(list(run_ids))
    return rows_from_frames(
        store.probes_frame(list(run_ids), results), results, detects_here(store, run_ids)
    )


def timed_runs(store: Store, run_ids: Sequence[int]) -> list[int]:
    """The runs whose timings are training rows: all but the profile runs."""
    return [r for r in run_ids if store.get_run(r).label != PROFILE_LABEL]


def fit_from_runs(store: Store, run_ids: Sequence[int], scope: Scope) -> FittedModel:
    """Fit from stored runs (deterministic: the same runs give the same model): training
    rows and the median/minimum scale from the timed runs, per-node profiles from any."""
    limits: dict[str, Any] = {}
    for run_id in run_ids:
        found = store.get_run(run_id).device_facts.get("limits")
        if isinstance(found, dict) and found.get("status") == "ok":
            limits = found
    timed = timed_runs(store, run_ids)
    everything = store.results_frame(list(run_ids))
    results = everything[everything["run_id"].isin(timed)]
    probes = store.probes_frame(timed, results)
    detected = detects_here(store, run_ids)
    provenance = Provenance(
        run_ids=tuple(run_ids),
        peak_gflop_s=_float_or_none(limits.get("peak_gflop_s")),
        bandwidth_gb_s=_float_or_none(limits.get("bandwidth_gb_s")),
        detected=detected,
        scale=median_over_min(store.measurements_frame(timed)),
    )
    return KernelLatencyModel().fit(
        rows_from_frames(probes, results, detected),
        scope,
        profiled_layers(store.profiles_frame(list(run_ids)), everything, detected),
        provenance,
    )


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def runtime_of(store: Store, run_ids: Sequence[int]) -> str:
    """The onnxruntime version the runs measured with (the first run that reports one)."""
    for run_id in run_ids:
        version = store.get_run(run_id).runtime_version
        if version:
            return version
    raise UserError(
        f"runs {', '.join(map(str, run_ids))} have no successful measurement to fit from; "
        "check the device with `mnbench devices check` and refit"
    )


def store_fit(store: Store, scope: Scope, model: FittedModel) -> int:
    """Keep a fit with the runs it came from; its id."""
    return store.add_latency_model(
        device=scope.device,
        runtime_version=scope.runtime,
        threads=scope.threads,
        precision=scope.precision,
        run_ids=model.provenance.run_ids,
        model_json=model.to_json(),
    )


def latest_model(store: Store, device: str, threads: int) -> FittedModel | None:
    """The newest fp32 latency model stored for a device × threads (None: none yet)."""
    found = store.latest_latency_model(device=device, threads=threads, precision="fp32")
    if found is None:
        return None
    where = f"latency model {found[0]}"
    load_stored_json(found[3], where, "fit")  # size and depth held before it is parsed
    try:
        return FittedModel.from_json(found[3])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise stored_data_error(where, "fit") from exc


def threads_of(store: Store, run_ids: Sequence[int]) -> int:
    """The thread count the runs measured with (their configuration's first)."""
    for run_id in run_ids:
        threads = store.get_run(run_id).config.get("threads")
        if isinstance(threads, list) and threads and isinstance(threads[0], int):
            return int(threads[0])
    raise UserError("the runs do not record their thread count; pass --threads")
