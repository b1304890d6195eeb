"""What a measuring workflow is asked to do: typed, frozen requests that a command builds
once from its flags (or a Python caller builds itself), so no workflow reads a command line.

A request holds what was asked, already checked: the runner's settings, the cool-down, the
models chosen, the limits. The workflows that take them: ``device_run`` (one device's run
and its resume), ``campaign`` (several devices at once; a lab campaign's plan, work and
status), ``layer_run`` (the block probes) and ``runtime_ab`` (two runtimes side by side).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mobilenet.validate import MAX_PLAN_ITEMS

if TYPE_CHECKING:
    from harness.measure.adaptive import AdaptivePlan
    from harness.measure.plan import RunnerSettings
    from harness.measure.regress import RegressPlan
    from mobilenet.precision import CalibrationSource
    from mobilenet.spec import ModelSpec
    from results.guards import CooldownPolicy

Location = Path | str
"""A results store: an SQLite file, or a ``postgresql://`` URL (``results.backend``); a
request's ``db`` of None is ``$MNBENCH_DB``, else ./mnbench.sqlite."""


@dataclass(frozen=True)
class ModelChoice:
    """The models a run measures: the grid's specs (with their int8 calibration), or ONNX
    files (with the shapes of their symbolic inputs), the files already checked."""

    specs: tuple[ModelSpec, ...] = ()
    paths: tuple[Path, ...] = ()
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    calibration: CalibrationSource | None = None

    @property
    def count(self) -> int:
        return len(self.paths) or len(self.specs)


@dataclass(frozen=True)
class MeasureRequest:
    """Measure models on one device (a run) or several at once (a campaign, one run each)."""

    devices: tuple[str, ...]
    """Inventory names, [groups] names or URLs."""
    models: ModelChoice
    settings: RunnerSettings
    models_dir: Path
    """Where generated models go."""
    trials: int = 3
    threads: tuple[int, ...] | None = None
    """Intra-op thread counts; None: one per selected core, else all the device's cores."""
    cpus: str | None = None
    timeout_s: float | None = None
    max_plan: int = MAX_PLAN_ITEMS
    adaptive: AdaptivePlan | None = None
    cooldown: CooldownPolicy | None = None
    label: str | None = None
    inventory: Path | None = None
    db: Location | None = None
    stored_models_dir: Path | None = None
    """Where a worker finds a stored run's models (None: the directory the run stored)."""
    quiet: bool = False
    keep_workdir: bool = False


@dataclass(frozen=True)
class ResumeRequest:
    """Finish an interrupted run: measure only what it is missing."""

    run: str
    """A run id, label or ``latest``."""
    device: str | None = None
    """None: the run's own device (a URL that names a program is given again)."""
    inventory: Path | None = None
    db: Location | None = None
    stored_models_dir: Path | None = None
    quiet: bool = False
    keep_workdir: bool = False


@dataclass(frozen=True)
class LabPlanRequest:
    """Store a campaign: one run per device, its plan inserted as work items."""

    campaign: str
    measure: MeasureRequest


@dataclass(frozen=True)
class LabWorkRequest:
    """Measure the devices' work items until none is left."""

    devices: tuple[str, ...]
    campaign: str | None = None
    lease_s: float = 120.0
    reconnect_s: float = 60.0
    inventory: Path | None = None
    db: Location | None = None
    stored_models_dir: Path | None = None


@dataclass(frozen=True)
class LayersRequest:
    """Time each separable block of one alpha x resolution against its standard conv."""

    device: str
    alpha: float
    resolution: int
    kernels: tuple[int, ...]
    blocks: tuple[int, ...] | None
    """None: every block."""
    settings: RunnerSettings
    models_dir: Path
    threads: int | None = None
    trials: int = 3
    cpus: str | None = None
    timeout_s: float | None = None
    cooldown: CooldownPolicy | None = None
    limits: bool = True
    """Measure the device's peak GFLOP/s and copy bandwidth first."""
    label: str | None = None
    inventory: Path | None = None
    db: Location | None = None
    quiet: bool = False


@dataclass(frozen=True)
class RegressRequest:
    """Two runtimes on one device, measured side by side."""

    device: str
    plan: RegressPlan
    specs: tuple[ModelSpec, ...]
    settings: RunnerSettings
    threads: Sequence[int] | None = None
    cooldown: CooldownPolicy | None = None
    inventory: Path | None = None
    db: Location | None = None
    keep_workdir: bool = False
