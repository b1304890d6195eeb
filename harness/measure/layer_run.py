"""The block probes of one alpha x resolution measured on a device, and their table.

For every block (and each D_K asked for) the layer probes of ``mobilenet.probes`` -- the
standard conv, depthwise + pointwise, and each part alone -- are measured like whole models
(the same session, runner, store and run configuration as ``mnbench run``). First the
device's peak GEMM throughput and copy bandwidth (the roofline's ceilings) are measured
through its backend and stored in the run's device facts under ``limits``. The table
(``mobilenet.layers.layer_table``) sets the measured ratio separable / standard beside the
predicted 1/N + 1/D_K².
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.measure.device_run import Say, create_run, stderr
from harness.measure.plan import make_plan
from harness.measure.session import MeasurementSession
from harness.measure.sweep import ProgressBar, prepare_probes
from harness.measure.targets import resolve_target
from mobilenet.errors import UserError
from mobilenet.layers import layer_table
from mobilenet.probes import BLOCKS, block_probes
from results.store import Store, default_db_path

if TYPE_CHECKING:
    import pandas as pd

    from harness.measure.requests import LayersRequest, Location


@dataclass(frozen=True)
class LayersResult:
    """A layers run's table and the probes that failed (what, why)."""

    run_id: int
    table: pd.DataFrame
    failures: tuple[tuple[str, str], ...] = ()


def measure_layers(request: LayersRequest, say: Say = stderr) -> LayersResult:
    """Generate the probes, measure the device's limits, measure the probes into a new run;
    its table."""
    device = resolve_target(request.device, request.inventory)
    with Store.open(request.db or default_db_path()) as store:
        kernels = tuple(dict.fromkeys(request.kernels))
        blocks = tuple(sorted(set(request.blocks))) if request.blocks else BLOCKS
        probes = block_probes(request.alpha, request.resolution, kernels, blocks)
        models = prepare_probes(probes, request.models_dir, store)
        with MeasurementSession(
            device,
            request.settings,
            store=store,
            timeout_s=request.timeout_s,
            cooldown=request.cooldown,
        ) as session:
            threads = [request.threads] if request.threads else None
            chosen = session.select(request.cpus or device.cpus, threads)
            if request.limits:
                session.record_limits(chosen.threads[0], chosen.cpus)
            layers = {
                "alpha": request.alpha,
                "resolution": request.resolution,
                "kernels": list(kernels),
                "blocks": sorted({p.block for p in probes}),
            }
            run_id = create_run(
                session,
                models,
                chosen,
                trials=request.trials,
                device=request.device,
                label=request.label,
                inventory=request.inventory,
                db=request.db,
                models_dir=request.models_dir,
                holder="mnbench layers",
                extra_config={"layers": layers},
            )
            count = chosen.threads[0]
            say(
                f"run {run_id}: {len(models)} layer probes x {request.trials} trials, "
                f"{count} thread{'s' if count != 1 else ''}, on {device.name} -> {store.path}"
            )
            plan = make_plan(models, chosen.threads, request.trials, chosen.cpus)
            outcome = session.run(run_id, plan, None if request.quiet else ProgressBar())
        table = _table(store, outcome.run_id)
    return LayersResult(outcome.run_id, table, tuple(outcome.failures))


def stored_layers(db: Location | None, run: str) -> LayersResult:
    """The table of a stored layers run (``run``: an id, label or ``latest``); nothing is
    measured."""
    with Store.open(db or default_db_path(), readonly=True) as store:
        run_id = store.resolve_run_id(run)
        return LayersResult(run_id, _table(store, run_id))


def _table(store: Store, run_id: int) -> pd.DataFrame:
    table = layer_table(store.probes_frame([run_id]))
    if table.empty:
        raise UserError(f"run {run_id} holds no layer probes; measure them with `mnbench layers`")
    return table


def ratio_summary(table: pd.DataFrame) -> str:
    """One line: how many blocks' measured ratio is above the prediction, and the worst."""
    ratios = [
        (float(m), float(p))
        for m, p in zip(table["measured_ratio"], table["predicted_ratio"], strict=True)
        if not math.isnan(float(m))
    ]
    if not ratios:
        return "no block has both a standard and a separable time"
    above = sum(1 for m, p in ratios if m > p)
    worst = max(m / p for m, p in ratios)
    return (
        f"{len(ratios)} blocks: the measured ratio is above the prediction in {above}; "
        f"at worst {worst:.1f}x the predicted 1/N + 1/D_K²"
    )
