"""Adaptive trials: add fresh-process trials per cell until the cross-trial CI is in target.

Owns ``run_adaptive``; its plan, ``AdaptivePlan`` (``run --target-ci``, ``--max-trials``,
``--budget``), is a value of the run's configuration (``results.config``). The base plan
(``--trials`` per cell, trial-major) runs first; then rounds: each round gives one more
trial to every cell whose interval (``results.trials``) is wider than the target and that
has trials left, in plan order, so the rounds stay interleaved across cells and drift is
spread rather than concentrated in the slowest cells. The store is the only state:
``--resume`` re-plans the same rounds from what was measured. Cells that never reach the
target are flagged ``target_missed`` with their spread (``results.reliability``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.measure.plan import PlanItem
from harness.measure.sweep import ProgressFn, Sweep, SweepOutcome, run_plan
from results.config import AdaptivePlan, adaptive_from_json
from results.store import config_key
from results.trials import short_of_target

DEFAULT_MAX_TRIALS = 10

__all__ = ["DEFAULT_MAX_TRIALS", "AdaptivePlan", "adaptive_from_config", "run_adaptive"]


def adaptive_from_config(run_id: int, value: object) -> AdaptivePlan | None:
    """The stored ``adaptive`` entry of a run configuration, checked (None: absent)."""
    return adaptive_from_json(run_id, value)


def _cell(item: PlanItem) -> tuple[str, str]:
    return item.model.sha256, config_key(item.config)


def run_adaptive(
    sweep: Sweep,
    run_id: int,
    plan: Sequence[PlanItem],
    adaptive: AdaptivePlan,
    progress: ProgressFn | None = None,
    holder: str = "mnbench run",
) -> SweepOutcome:
    """Run the base plan, then rounds of one more trial per cell short of the target."""
    outcome = run_plan(sweep, run_id, plan, progress, holder)
    cells: dict[tuple[str, str], PlanItem] = {}
    for item in plan:
        cells.setdefault(_cell(item), item)
    while True:
        frame = sweep.store.results_frame([run_id])
        medians: dict[tuple[str, str], list[float]] = {}
        for sha, key, values in zip(
            frame["sha256"], frame["config_key"], frame["trial_medians_ms"], strict=True
        ):
            medians[(str(sha), str(key))] = [float(v) for v in values]
        used: dict[tuple[str, str], int] = {}
        top: dict[tuple[str, str], int] = {}
        for sha, key, trial in sweep.store.completed_keys(run_id):
            used[(sha, key)] = used.get((sha, key), 0) + 1
            top[(sha, key)] = max(top.get((sha, key), 0), trial)
        total = sum(used.get(cell, 0) for cell in cells)
        left = (adaptive.budget - total) if adaptive.budget is not None else len(cells)
        chosen = short_of_target(
            [(cell, medians.get(cell, []), used.get(cell, 0)) for cell in cells],
            target=adaptive.target_ci,
            max_trials=adaptive.max_trials,
            budget_left=left,
        )
        if not chosen:
            return outcome
        round_plan = [replace(cells[cell], trial=top.get(cell, 0) + 1) for cell in chosen]
        more = run_plan(sweep, run_id, round_plan, progress, holder)
        outcome.measured += more.measured
        outcome.failures.extend(more.failures)
        outcome.runtime_version = outcome.runtime_version or more.runtime_version
