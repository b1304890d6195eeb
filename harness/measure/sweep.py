"""Sweep orchestration: plan model x configuration x trial, run each in a fresh runner process
on the device through a measurement session (``Sweep``), and commit every measurement to
the store on its own (``Trial``: the result, with the guard readings beside it).

One code path for every device (the Transport seam): the agent (``devices/agent`` as one
zipapp) is pushed to the
device's work directory once, each model once, and each measurement is one process (a
``RunnerSettings.batch`` above 1 measures consecutive items in one process). An
interrupted sweep loses at most the measurement (or batch) in flight; ``resume`` re-plans from the
stored configuration and measures only what is missing. Trials are interleaved (trial-major
order) so slow drift of the machine spreads over all cells instead of biasing one.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import onnx

from devices.transport import Transport, TransportError
from harness.measure.guard import TrialGuard
from harness.measure.methods import DeviceResult, MeasuringMethod
from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
from mobilenet.cost import analyze_model, load_model_file
from mobilenet.errors import Interrupted, UserError, check_stop, disk_full_message
from mobilenet.generator import generate, spec_from_model
from mobilenet.layers import layer_card
from mobilenet.precision import CalibrationSource
from mobilenet.probes import Probe, generate_probe
from mobilenet.spec import ModelSpec
from results.config import RunConfig, run_config
from results.store import ModelRecord, Store, config_key


@dataclass
class SweepOutcome:
    run_id: int
    measured: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    runtime_version: str | None = None


ProgressFn = Callable[[int, int, "PlanItem | None", "float | None"], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_models(
    specs: Sequence[ModelSpec],
    models_dir: Path,
    store: Store,
    calibration: CalibrationSource | None = None,
) -> list[ModelEntry]:
    """Generate what is missing (an identical file is reused) and record the cost cards."""
    entries = []
    for spec in specs:
        generated = generate(spec, models_dir, calibration=calibration)
        store.upsert_model(
            ModelRecord(
                sha256=generated.sha256,
                name=spec.name,
                alpha=spec.alpha,
                resolution=spec.resolution,
                variant=spec.variant,
                kernel=spec.kernel,
                precision=spec.precision,
                macs=generated.macs,
                params=generated.params,
                weight_bytes=generated.weight_bytes,
                peak_activation_bytes=generated.peak_activation_bytes,
                file_bytes=generated.file_bytes,
            )
        )
        entries.append(ModelEntry(spec.name, generated.path.resolve(), generated.sha256, spec))
    return entries


def prepare_probes(probes: list[Probe], models_dir: Path, store: Store) -> list[ModelEntry]:
    """Generate what is missing (an identical file is reused) and record each probe as a
    model (variant ``probe-<role>``, its facts and per-layer cost card in ``cost``)."""
    entries: list[ModelEntry] = []
    for probe in probes:
        generated = generate_probe(probe, models_dir)
        store.upsert_model(
            ModelRecord(
                sha256=generated.sha256,
                name=probe.name,
                alpha=probe.alpha,
                resolution=probe.resolution,
                variant=probe.variant,
                kernel=probe.kernel,
                precision="fp32",
                macs=generated.macs,
                params=generated.params,
                weight_bytes=generated.weight_bytes,
                peak_activation_bytes=generated.peak_activation_bytes,
                file_bytes=generated.file_bytes,
                cost=generated.card,
            )
        )
        entries.append(ModelEntry(probe.name, generated.path.resolve(), generated.sha256))
    return entries


def prepare_files(
    paths: Sequence[Path], shapes: Mapping[str, Sequence[int]], store: Store
) -> list[ModelEntry]:
    """Anyone's ONNX files: checked, costed with the cost model, recorded."""
    entries = []
    shape_args = tuple(f"{k}={'x'.join(map(str, v))}" for k, v in shapes.items())
    for path in paths:
        model = load_model_file(path)
        _check_loads(path)
        cost = analyze_model(model, shapes)
        spec = spec_from_model(model)
        sha = sha256_file(path)
        store.upsert_model(
            ModelRecord(
                sha256=sha,
                name=spec.name if spec else path.stem,
                alpha=spec.alpha if spec else None,
                resolution=spec.resolution if spec else None,
                variant=spec.variant if spec else None,
                kernel=spec.kernel if spec else None,
                precision=spec.precision if spec else _precision_of(model),
                macs=cost.total_macs,
                params=cost.total_params,
                weight_bytes=cost.total_weight_bytes,
                peak_activation_bytes=cost.peak_activation_bytes,
                file_bytes=path.stat().st_size,
                cost=layer_card(cost, model),
            )
        )
        entries.append(
            ModelEntry(spec.name if spec else path.stem, path.resolve(), sha, spec, shape_args)
        )
    return entries


def _check_loads(path: Path) -> None:
    """Refuse up front a file this machine's onnxruntime cannot load (one line, exit 2)."""
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - the harness depends on onnxruntime
        return
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"onnxruntime rejects {path}: {first[:200]}") from exc


def _precision_of(model: onnx.ModelProto) -> str:
    types = {t.data_type for t in model.graph.initializer}
    if onnx.TensorProto.INT8 in types or onnx.TensorProto.UINT8 in types:
        return "int8"
    if onnx.TensorProto.FLOAT16 in types:
        return "fp16"
    return "fp32"


class Sweep(Protocol):
    """What a plan runs through: a ``harness.measure.session.MeasurementSession`` (its
    store, settings, guard and measuring method)."""

    settings: RunnerSettings
    timeout_s: float
    transport: Transport
    guard: TrialGuard | None
    trial_target_ci: float | None

    @property
    def store(self) -> Store: ...

    def resume_hint(self, run_id: int) -> str: ...

    def measure_batch(
        self, items: Sequence[PlanItem], method: MeasuringMethod | None = None
    ) -> list[DeviceResult]: ...


@dataclass(frozen=True)
class Trial:
    """One measurement of a plan item as it is stored: the device's result, and beside it
    the guard readings taken around its process and an adaptive run's cross-trial target.
    The store keeps them in the one document column (``guards``, ``trial_target_ci``
    beside the agent's fields), so readers of older rows read these the same way."""

    item: PlanItem
    result: DeviceResult
    guards: Mapping[str, object] | None = None
    trial_target_ci: float | None = None

    def stored_document(self) -> dict[str, Any] | None:
        """The document column: the agent's document with the guard record and the target
        (a new dict: the agent's own is left as it printed it)."""
        document = self.result.document
        if document is None:
            return None
        stored = dict(document)
        if self.guards is not None:
            stored["guards"] = dict(self.guards)
        if self.trial_target_ci is not None:
            stored["trial_target_ci"] = self.trial_target_ci
        return stored


def measure_trials(
    sweep: Sweep, items: Sequence[PlanItem], method: MeasuringMethod | None = None
) -> list[Trial]:
    """Measure items in one runner process (one item: a fresh-process trial) between the
    session's guard readings: each item's result with the process's guard record."""
    guard = sweep.guard
    started = guard.before() if guard else None
    results = sweep.measure_batch(items, method)
    record: dict[str, object] | None = None
    if guard and started:
        cpu = [(result.document or {}).get("process_cpu_s") for result in results]
        total = sum(c for c in cpu if isinstance(c, (int, float)))
        reported = {"process_cpu_s": total} if any(c is not None for c in cpu) else None
        record = guard.after(started, reported, items[0].cpus)
    return [
        Trial(item, result, record if result.document is not None else None, sweep.trial_target_ci)
        for item, result in zip(items, results, strict=True)
    ]


def measure_into(
    sweep: Sweep,
    run_id: int,
    item: PlanItem,
    outcome: SweepOutcome,
    method: MeasuringMethod | None = None,
) -> dict[str, Any] | None:
    """Measure one planned item and commit it to the store; the document when it worked."""
    return measure_batch_into(sweep, run_id, [item], outcome, method)[0]


def measure_batch_into(
    sweep: Sweep,
    run_id: int,
    items: Sequence[PlanItem],
    outcome: SweepOutcome,
    method: MeasuringMethod | None = None,
) -> list[dict[str, Any] | None]:
    """Measure planned items in one runner process (one item: a fresh-process trial) and
    commit each to the store on its own; each item's document when it worked. The guard
    readings are taken around the process, and its record is stored with every item."""
    check_stop()
    sweep.store.heartbeat(run_id)
    try:
        trials = measure_trials(sweep, items, method)
    except TransportError as exc:
        raise UserError(
            f"lost {sweep.transport.name} after {outcome.measured} measurements "
            f"({exc.message}); what was measured is kept: fix the device, then "
            f"{sweep.resume_hint(run_id)}"
        ) from exc
    kept: list[dict[str, Any] | None] = []
    for trial in trials:
        item, result = trial.item, trial.result
        sweep.store.add_measurement(
            run_id=run_id,
            model_sha256=item.model.sha256,
            config=item.config,
            trial=item.trial,
            status=result.status,
            reason=result.reason,
            document=trial.stored_document(),
        )
        outcome.measured += 1
        if not result.ok:
            outcome.failures.append(
                (
                    f"{item.model.name} threads={item.threads} trial {item.trial}",
                    result.reason or "failed",
                )
            )
            kept.append(None)
            continue
        doc = result.document
        assert doc is not None
        version = (doc.get("runtime") or {}).get("version")
        if not outcome.runtime_version and version:
            sweep.store.set_runtime_version(run_id, str(version))
            outcome.runtime_version = str(version)
        kept.append(doc)
    return kept


def batches(plan: Sequence[PlanItem], size: int) -> list[list[PlanItem]]:
    """Consecutive items in groups of at most ``size`` that one runner process can measure:
    the same threads, cores and input shapes, each model once."""
    groups: list[list[PlanItem]] = []
    for item in plan:
        group = groups[-1] if groups else None
        if (
            group is not None
            and len(group) < size
            and (group[0].threads, group[0].cpus, group[0].model.shapes)
            == (item.threads, item.cpus, item.model.shapes)
            and all(other.model.sha256 != item.model.sha256 for other in group)
        ):
            group.append(item)
        else:
            groups.append([item])
    return groups


def pending(store: Store, run_id: int, plan: Sequence[PlanItem]) -> list[PlanItem]:
    done = store.completed_keys(run_id)
    return [i for i in plan if (i.model.sha256, config_key(i.config), i.trial) not in done]


def run_plan(
    sweep: Sweep,
    run_id: int,
    plan: Sequence[PlanItem],
    progress: ProgressFn | None = None,
    holder: str = "mnbench run",
) -> SweepOutcome:
    """Measure every planned item not yet in the store for this run, holding its lease."""
    store = sweep.store
    with store.lease(run_id, holder, lease_stale_after_s(sweep.timeout_s, sweep.settings.batch)):
        outcome = SweepOutcome(run_id)
        todo = pending(store, run_id, plan)
        outcome.skipped = len(plan) - len(todo)
        store.set_run_status(run_id, "running")
        outcome.runtime_version = store.get_run(run_id).runtime_version
        last_ms: float | None = None
        with stopping_marks(store, [run_id], sweep.resume_hint(run_id)):
            done = 0
            for group in batches(todo, max(1, sweep.settings.batch)):
                if progress:
                    progress(done, len(todo), group[0], last_ms)
                docs = measure_batch_into(sweep, run_id, group, outcome)
                done += len(group)
                samples = (docs[-1] or {}).get("samples_ms") or []
                last_ms = statistics.median(samples) if samples else None
            if progress:
                progress(len(todo), len(todo), None, last_ms)
        store.set_run_status(run_id, "complete")
    return outcome


def lease_stale_after_s(timeout_s: float, batch: int = 1) -> float:
    """How old a lease's heartbeat may get: two runner processes' timeouts (a batch's is its
    items' together) and the pushes."""
    return 2 * timeout_s * max(1, batch) + 300.0


def measurement_timeout_s(settings: RunnerSettings, timeout_s: float | None) -> float:
    """The runner's kill timeout: given, else 4 x max-time + 30 s (at least 60 s)."""
    return timeout_s or max(60.0, 4 * settings.max_time_s + 30.0)


@contextlib.contextmanager
def stopping_marks(store: Store, run_ids: Sequence[int], hint: str) -> Iterator[None]:
    """On any way out but success, mark the runs interrupted and say how to resume.

    Ctrl-C, SIGTERM and SIGHUP (``Interrupted``) come out as ``Interrupted`` carrying
    ``hint``; a full disk as one ``UserError`` line; anything else unchanged.
    """
    try:
        yield
    except BaseException as exc:
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                store.set_run_status(run_id, "interrupted")
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(signal.SIGINT, hint) from None
        if isinstance(exc, Interrupted):
            raise Interrupted(exc.signum, exc.hint or hint) from None
        full = disk_full_message(exc)
        if full is not None:
            raise UserError(f"{full}; what was measured is kept: {hint}") from None
        raise


class ProgressBar:
    """done/total, percent, ETA, the current model and the last median, on stderr."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(
        self, index: int, total: int, item: PlanItem | None, last_ms: float | None
    ) -> None:
        elapsed = time.monotonic() - self.start
        eta = elapsed / index * (total - index) if index else math.nan
        eta_text = "--:--" if math.isnan(eta) else f"{int(eta // 60)}:{int(eta % 60):02d}"
        last = f"  last median {last_ms:.3f} ms" if last_ms is not None else ""
        width = 20
        filled = int(width * index / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        what = f"{item.model.name} threads={item.threads} trial {item.trial}" if item else "done"
        line = f"[{bar}] {index}/{total} ETA {eta_text}  {what}{last}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if item is None else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def sweep_config(
    models: Sequence[ModelEntry],
    threads: Sequence[int],
    trials: int,
    cpus: Sequence[int] | None,
    settings: RunnerSettings,
    device: str,
    models_dir: Path,
    timeout_s: float | None,
) -> dict[str, object]:
    """Everything needed to re-plan the sweep on --resume, as JSON (``RunConfig``'s)."""
    return run_config(
        models, threads, trials, cpus, settings, device, models_dir, timeout_s
    ).to_json()


def models_from_config(
    config: RunConfig | Mapping[str, Any], store: Store, models_dir: Path | None = None
) -> list[ModelEntry]:
    """The models of a stored sweep, found or regenerated in ``models_dir`` -- the current
    command's directory (``--models-dir``, ``$MNBENCH_MODELS``, else ./models), never a
    directory the database names. A stored document is read as ``RunConfig``.

    A generated model's stored path is read only when it lies in ``models_dir``; elsewhere the
    model is looked for, or regenerated, there. A user's model file (no spec) is read where
    stored, never written, and must still be that file (same sha256)."""
    if not isinstance(config, RunConfig):
        config = RunConfig.from_json(0, config, "local")
    entries = []
    directory = (models_dir or Path("models")).resolve()
    for model in config.models:
        path, spec = model.path, model.spec
        if spec is not None:
            inside = path.parent.resolve() == directory
            if not inside or not path.is_file() or sha256_file(path) != model.sha256:
                (entry,) = prepare_models([spec], directory, store)
                if entry.sha256 != model.sha256:
                    raise UserError(
                        f"{spec.name} regenerates to a different file than the run measured "
                        "(the generator changed); start a new run instead of resuming"
                    )
                path = entry.path
        elif not path.is_file() or sha256_file(path) != model.sha256:
            raise UserError(
                f"{path} is missing or changed since the run started; restore it or start a new run"
            )
        entries.append(replace(model, path=path))
    return entries


def default_cpu_count(facts: Mapping[str, Any]) -> int:
    for key in ("logical_cores", "nproc", "cpu_count"):
        value = facts.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return os.cpu_count() or 1
