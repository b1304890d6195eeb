"""Sweep orchestration: plan model x configuration x trial, run each in a fresh runner process
on the device, and commit every measurement to the store on its own.

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
import json
import math
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from devices.device import DeviceConfig, open_transport
from devices.transport import Transport, TransportError
from harness.measure.backends import Backend, Measured, backend_for
from harness.measure.guard import TrialGuard
from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
from mobilenet.cost import analyze_model, load_model_file
from mobilenet.errors import Interrupted, UserError, check_stop, disk_full_message
from mobilenet.generator import generate, spec_from_model
from mobilenet.layers import layer_card
from mobilenet.precision import CalibrationSource
from mobilenet.probes import Probe, generate_probe
from mobilenet.spec import ModelSpec
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


class Sweep:
    """Runs a plan on one device and writes the store."""

    def __init__(
        self,
        device: DeviceConfig,
        store: Store,
        settings: RunnerSettings,
        timeout_s: float | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.device = device
        self.store = store
        self.settings = settings
        self.timeout_s = measurement_timeout_s(settings, timeout_s)
        self.transport = transport or open_transport(device)
        self._pushed: dict[str, str] = {}  # model sha256 or program name -> path on the device
        self._backend: Backend | None = None
        self._session: str | None = None
        self.facts: dict[str, Any] = {}

    resume_command: str | None = None
    """Overrides ``resume_hint`` (``regress`` resumes differently)."""

    def resume_hint(self, run_id: int) -> str:
        """What to type to finish the run after it stopped."""
        return self.resume_command or f"resume with `mnbench run --resume {run_id}`"

    keep_files: bool = False
    """Leave what this sweep pushed on the device (``--keep-workdir``)."""

    guard: TrialGuard | None = None
    """Samples the device around every trial and applies ``--cooldown`` (None: no guards)."""

    trial_target_ci: float | None = None
    """The cross-trial CI target of an adaptive run, stored with each trial's document."""

    def close(self) -> None:
        self.remove_files()
        self.transport.close()

    @property
    def session_dir(self) -> str | None:
        """The directory on the device holding what this sweep pushed (None before a push)."""
        return self._session

    def remote_path(self, name: str) -> str:
        """Where ``name`` goes on the device: a directory of this sweep's own inside the
        device's work directory, so sweeps sharing a board never remove each other's files."""
        return f"{self._session_dir()}/{name}"

    def _session_dir(self) -> str:
        if self._session is None:
            workdir = self.transport.workdir.rstrip("/")
            self._session = f"{workdir}/session-{os.getpid()}-{secrets.token_hex(4)}"
        return self._session

    def share_files(self, other: Sweep) -> None:
        """Use the files ``other`` pushes (same device, same models): one copy for both."""
        self._session = other._session_dir()
        self._pushed = other._pushed

    def remove_files(self) -> None:
        """Remove the runner and model copies this sweep pushed (best effort: a lost device
        keeps them), unless ``keep_files``."""
        session, self._session = self._session, None
        if session is None or self.keep_files:
            return
        self._pushed.clear()
        with contextlib.suppress(TransportError, OSError):
            self.transport.run(["rm", "-rf", "--", session], timeout_s=60, check=False)

    def push_file(self, local: Path, name: str) -> str:
        """Push a program (or a library beside it) to ``name`` in this sweep's directory,
        once; its path on the device."""
        key = f"file:{name}"
        if key not in self._pushed:
            remote = self.remote_path(name)
            self.transport.push(local, remote)
            self._pushed[key] = remote
        return self._pushed[key]

    def pushed(self, name: str) -> str | None:
        """Where ``push_file`` put ``name`` (None before it did)."""
        return self._pushed.get(f"file:{name}")

    def push_model(self, model: ModelEntry) -> str:
        if model.sha256 not in self._pushed:
            remote = self.remote_path(f"models/{model.sha256[:12]}-{model.path.name}")
            self.transport.push(model.path, remote)
            self._pushed[model.sha256] = remote
        return self._pushed[model.sha256]

    @property
    def backend(self) -> Backend:
        """How this device measures (the Python agent, or onnxruntime_perf_test on a phone
        without Python): chosen once, on first use."""
        if self._backend is None:
            self._backend = backend_for(self)
        return self._backend

    def measure(self, item: PlanItem) -> Measured:
        """(status, reason, document) of one measurement in a fresh process on the device."""
        return self.backend.measure(item)

    def measure_batch(self, items: Sequence[PlanItem]) -> list[Measured]:
        """(status, reason, document) of each item, measured in one process where the
        backend can."""
        return self.backend.measure_batch(items)


def measure_into(
    sweep: Sweep, run_id: int, item: PlanItem, outcome: SweepOutcome
) -> dict[str, Any] | None:
    """Measure one planned item and commit it to the store; the document when it worked."""
    return measure_batch_into(sweep, run_id, [item], outcome)[0]


def measure_batch_into(
    sweep: Sweep, run_id: int, items: Sequence[PlanItem], outcome: SweepOutcome
) -> list[dict[str, Any] | None]:
    """Measure planned items in one runner process (one item: a fresh-process trial) and
    commit each to the store on its own; each item's document when it worked. The guard
    readings are taken around the process, and its record is stored with every item."""
    check_stop()
    sweep.store.heartbeat(run_id)
    try:
        started = sweep.guard.before() if sweep.guard else None
        results = sweep.measure_batch(items)
        if sweep.guard and started:
            cpu = [(doc or {}).get("process_cpu_s") for _status, _reason, doc in results]
            total = sum(c for c in cpu if isinstance(c, (int, float)))
            reported = {"process_cpu_s": total} if any(c is not None for c in cpu) else None
            record = sweep.guard.after(started, reported, items[0].cpus)
            for _status, _reason, doc in results:
                if doc is not None:
                    doc["guards"] = record
        if sweep.trial_target_ci is not None:
            for _status, _reason, doc in results:
                if doc is not None:
                    doc["trial_target_ci"] = sweep.trial_target_ci
    except TransportError as exc:
        raise UserError(
            f"lost {sweep.transport.name} after {outcome.measured} measurements "
            f"({exc.message}); what was measured is kept: fix the device, then "
            f"{sweep.resume_hint(run_id)}"
        ) from exc
    kept: list[dict[str, Any] | None] = []
    for item, (status, reason, doc) in zip(items, results, strict=True):
        sweep.store.add_measurement(
            run_id=run_id,
            model_sha256=item.model.sha256,
            config=item.config,
            trial=item.trial,
            status="ok" if status == "ok" else "failed",
            reason=reason,
            document=doc,
        )
        outcome.measured += 1
        if status != "ok":
            outcome.failures.append(
                (f"{item.model.name} threads={item.threads} trial {item.trial}", reason or "failed")
            )
            kept.append(None)
            continue
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
    """Everything needed to re-plan the sweep on --resume, as JSON."""
    return {
        "device": device,
        "threads": list(threads),
        "trials": trials,
        "cpus": list(cpus) if cpus else None,
        "settings": asdict(settings),
        "timeout_s": timeout_s,
        "models_dir": str(models_dir),
        "models": [
            {
                "name": m.name,
                "path": str(m.path),
                "sha256": m.sha256,
                "spec": json.loads(m.spec.to_json()) if m.spec else None,
                "shapes": list(m.shapes),
            }
            for m in models
        ],
    }


def models_from_config(
    config: Mapping[str, Any], store: Store, models_dir: Path | None = None
) -> list[ModelEntry]:
    """The models of a stored sweep, regenerated (into ``models_dir``, else the stored
    directory) if their files are gone."""
    entries = []
    if models_dir is None:
        models_dir = Path(str(config.get("models_dir", "models")))
    for item in config["models"]:
        path = Path(item["path"])
        spec = ModelSpec.from_json(json.dumps(item["spec"])) if item.get("spec") else None
        if spec is not None and (not path.is_file() or sha256_file(path) != item["sha256"]):
            (entry,) = prepare_models([spec], models_dir, store)
            if entry.sha256 != item["sha256"]:
                raise UserError(
                    f"{spec.name} regenerates to a different file than the run measured "
                    "(the generator changed); start a new run instead of resuming"
                )
            path = entry.path
        elif spec is None and (not path.is_file() or sha256_file(path) != item["sha256"]):
            raise UserError(
                f"{path} is missing or changed since the run started; restore it or start a new run"
            )
        entries.append(
            ModelEntry(item["name"], path, item["sha256"], spec, tuple(item.get("shapes") or ()))
        )
    return entries


def default_cpu_count(facts: Mapping[str, Any]) -> int:
    for key in ("logical_cores", "nproc", "cpu_count"):
        value = facts.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return os.cpu_count() or 1
