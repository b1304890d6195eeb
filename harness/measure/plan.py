"""A plan: which models to measure, how (the agent's settings), and in what order.

``RunnerSettings`` are the flags the agent takes; a ``ModelEntry`` is one model file to
measure; a ``PlanItem`` one model x configuration x trial. ``make_plan`` orders them
trial-major, so slow drift of the machine spreads over all cells instead of biasing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devices.agent.cli import (
    DEFAULT_MAX_TIME_S,
    DEFAULT_MIN_SAMPLES,
    DEFAULT_MIN_TIME_S,
    DEFAULT_PROFILE_RUNS,
    DEFAULT_TARGET_CI,
    DEFAULT_WARMUP_MAX_TIME_S,
)
from mobilenet.spec import ModelSpec


@dataclass(frozen=True)
class RunnerSettings:
    """Flags passed to the agent (see ``python -m devices.agent --help``)."""

    target_ci: float = DEFAULT_TARGET_CI  # a fraction: 0.01 stops at a CI within +-1 %
    min_time_s: float = DEFAULT_MIN_TIME_S
    max_time_s: float = DEFAULT_MAX_TIME_S
    min_samples: int = DEFAULT_MIN_SAMPLES
    warmup_max_time_s: float = DEFAULT_WARMUP_MAX_TIME_S
    fixed: int | None = None
    opt_level: str = "all"
    profile: bool = False
    profile_runs: int = DEFAULT_PROFILE_RUNS
    """Inferences of the profiling session (``profile`` only; the first is left out)."""
    batch: int = 1
    """Up to this many consecutive plan items (same threads, cores and shapes) measured in one
    runner process, each in its own session: the process's start is paid once (about 3 s on
    the emulated aarch64 board). 1, the default, is a fresh process per measurement -- what a trial
    is; ``mnbench predict`` batches its fit's probes."""

    def argv(self) -> list[str]:
        args = [
            "--target-ci",
            repr(self.target_ci),
            "--min-time",
            repr(self.min_time_s),
            "--max-time",
            repr(self.max_time_s),
            "--min-samples",
            str(self.min_samples),
            "--warmup-max-time",
            repr(self.warmup_max_time_s),
            "--opt-level",
            self.opt_level,
        ]
        if self.fixed is not None:
            args += ["--fixed", str(self.fixed)]
        if self.profile:
            args += ["--profile", "--profile-runs", str(self.profile_runs)]
        return args


@dataclass(frozen=True)
class ModelEntry:
    """A model to measure: generated from a spec, or a user's file."""

    name: str
    path: Path
    sha256: str
    spec: ModelSpec | None = None
    shapes: tuple[str, ...] = ()  # NAME=DIMS for the runner's --shape


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
