"""A plan: which models to measure, and in what order.

A ``PlanItem`` is one model x configuration x trial (the models, ``ModelEntry``, and the
agent's settings, ``RunnerSettings``, are values of the run's configuration,
``results.config``, named here too for the plan's users). ``make_plan`` orders them
trial-major, so slow drift of the machine spreads over all cells instead of biasing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from results.config import ModelEntry, RunnerSettings

__all__ = ["ModelEntry", "PlanItem", "RunnerSettings", "make_plan"]


@dataclass(frozen=True)
class PlanItem:
    model: ModelEntry
    threads: int
    trial: int
    cpus: tuple[int, ...] | None

    @property
    def config(self) -> dict[str, object]:
        return {"threads": self.threads, "cpus": list(self.cpus) if self.cpus else None}


def make_plan(
    models: Sequence[ModelEntry],
    threads: Sequence[int],
    trials: int,
    cpus: Sequence[int] | None,
) -> list[PlanItem]:
    """Trial-major order: every cell once, then every cell again, and so on."""
    pinned = tuple(cpus) if cpus else None
    return [
        PlanItem(model, t, trial, pinned)
        for trial in range(1, trials + 1)
        for model in models
        for t in threads
    ]
