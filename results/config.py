"""A run's configuration: what it measures and how, written once, read back checked.

Owns ``RunConfig``, the one typed value every measuring verb stores with its run (the
``config`` column) and every reader reads back (``run --resume``, lab workers, regress):
the device, thread counts, cores, the runner's settings (``RunnerSettings``), the models
(``ModelEntry``), the cool-down, and what only one verb stores (``run``'s adaptive plan,
``layers``' scope, a ``regress`` side, ``predict``'s round, a lab campaign).

``to_json`` gives the stored document; ``from_json`` reads one back. A results database is
a file anyone can craft or share, so ``from_json`` checks every field by the command line's
rules and refuses the first bad one with one line naming the run and the field
(``StoredRunError``, exit code 2). Keys this version does not know are kept as read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from devices.agent.cli import (
    DEFAULT_MAX_TIME_S,
    DEFAULT_MIN_SAMPLES,
    DEFAULT_MIN_TIME_S,
    DEFAULT_PROFILE_RUNS,
    DEFAULT_TARGET_CI,
    DEFAULT_WARMUP_MAX_TIME_S,
)
from mobilenet.errors import UserError
from mobilenet.footprint import DEFAULT_MAX_MEMORY_MIB, check_generation_memory
from mobilenet.spec import ModelSpec
from mobilenet.validate import MAX_PLAN_ITEMS, MAX_TEXT_CHARS, MAX_THREADS, MAX_TIME_S, MAX_TRIALS
from results.guards import CooldownPolicy, cooldown_to_config

MAX_CPU = 65535
MAX_BATCH = 1000
"""The most measurements a stored run may ask one runner process for."""
MAX_TIMEOUT_S = 86400 * 7
_OPT_LEVELS = ("disable", "basic", "extended", "all")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHAPE = re.compile(r"[^=\s]+=\d+(x\d+)*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

RunKind = Literal["run", "layers", "regress", "predict", "lab", "plain"]
"""Which verb wrote the configuration (decides which verb-only keys it stores)."""


class StoredRunError(UserError):
    """A stored run's configuration fails the command line's rules (exit code 2)."""


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
    runner process, each in its own session: the process's start (seconds on an emulated
    board, docs/measurement.md) is paid once. 1, the default, is a fresh process per
    measurement -- what a trial is; ``mnbench predict`` batches its fit's probes."""

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

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "spec": json.loads(self.spec.to_json()) if self.spec else None,
            "shapes": list(self.shapes),
        }


@dataclass(frozen=True)
class AdaptivePlan:
    """The cross-trial target of a run (fractions and counts; None: not adaptive)."""

    target_ci: float
    max_trials: int
    budget: int | None  # total trials of the run, all cells together

    def to_config(self) -> dict[str, object]:
        return {"target_ci": self.target_ci, "max_trials": self.max_trials, "budget": self.budget}


@dataclass(frozen=True)
class RegressSide:
    """One side of a ``regress``: its runtime, its role, and the design both sides share
    (the pair settings only with ``design`` ``pairs``, read by ``results.compare``)."""

    runtime: str | None
    role: Literal["baseline", "candidate"] | None
    design: str | None = None
    pairing: str | None = None
    max_pairs: int | None = None
    min_pairs: int | None = None
    alpha: float | None = None
    budget_s: float | None = None
    bursts_per_side: int | None = None
    burst_target_s: float | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {"runtime": self.runtime, "regress_role": self.role}
        if self.design is not None:
            document["design"] = self.design
        if self.pairing is not None:
            document.update(
                pairing=self.pairing,
                max_pairs=self.max_pairs,
                min_pairs=self.min_pairs,
                alpha=self.alpha,
                budget_s=self.budget_s,
                bursts_per_side=self.bursts_per_side,
                burst_target_s=self.burst_target_s,
                seed=self.seed,
            )
        return document


_PAIR_KEYS = (
    "pairing",
    "max_pairs",
    "min_pairs",
    "alpha",
    "budget_s",
    "bursts_per_side",
    "burst_target_s",
    "seed",
)
_REGRESS_KEYS = ("runtime", "regress_role", "design", *_PAIR_KEYS)
_BASE_KEYS = (
    "device",
    "threads",
    "trials",
    "cpus",
    "settings",
    "timeout_s",
    "models_dir",
    "models",
    "cooldown",
)
_VERB_KEYS = ("adaptive", "layers", "predict", "campaign", *_REGRESS_KEYS)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to be planned again (``--resume``, a lab worker)."""

    device: str
    threads: tuple[int, ...]
    trials: int
    cpus: tuple[int, ...] | None
    settings: RunnerSettings
    timeout_s: float | None
    """As given (None: the default kill timeout)."""
    models_dir: str | None
    models: tuple[ModelEntry, ...]
    cooldown: CooldownPolicy | None = None
    kind: RunKind = "plain"
    adaptive: AdaptivePlan | None = None
    """``run``: the cross-trial target (stored, possibly null, by every ``run``)."""
    layers: Mapping[str, Any] | None = None
    """``layers``: the probes' scope (alpha, resolution, kernels, blocks)."""
    regress: RegressSide | None = None
    predict: Mapping[str, Any] | None = None
    """``predict``: the round and its sampling (seed, probes, ...)."""
    campaign: str | None = None
    """A lab campaign's name (``results.lab``)."""
    other: Mapping[str, Any] = field(default_factory=dict)
    """Keys this version does not know, kept as read."""

    def to_json(self) -> dict[str, Any]:
        """The stored document (what ``from_json`` reads back)."""
        document: dict[str, Any] = {
            "device": self.device,
            "threads": list(self.threads),
            "trials": self.trials,
            "cpus": list(self.cpus) if self.cpus else None,
            "settings": asdict(self.settings),
            "timeout_s": self.timeout_s,
        }
        if self.models_dir is not None:
            document["models_dir"] = self.models_dir
        document["models"] = [model.to_json() for model in self.models]
        document["cooldown"] = cooldown_to_config(self.cooldown)
        if self.kind == "run":
            document["adaptive"] = self.adaptive.to_config() if self.adaptive else None
        if self.kind == "layers" or self.layers is not None:
            document["layers"] = dict(self.layers) if self.layers is not None else None
        if self.regress is not None:
            document.update(self.regress.to_json())
        if self.kind == "predict" or self.predict is not None:
            document["predict"] = dict(self.predict) if self.predict is not None else None
        if self.kind == "lab" or self.campaign is not None:
            document["campaign"] = self.campaign
        document.update(self.other)
        return document

    def with_extras(self, extras: Mapping[str, object] | None) -> RunConfig:
        """This configuration with a verb's own keys (``adaptive``, ``layers``, a regress
        side, ``predict``, ``campaign``) as the verb gives them, already checked."""
        if not extras:
            return self
        return _with_verb_keys(self, extras, None)

    @classmethod
    def from_json(cls, run_id: int, config: Mapping[str, Any], device: str) -> RunConfig:
        """A stored configuration, every field checked (``StoredRunError`` names the first
        bad one); ``device`` is the run's own when the configuration names none."""
        stored_device = config.get("device") or device
        if not _text(stored_device) or len(stored_device) > 4096:
            raise _fail(run_id, "device")
        threads = config.get("threads")
        if (
            not isinstance(threads, list)
            or not threads
            or len(threads) > MAX_THREADS
            or not all(_integer(t, 1, MAX_THREADS) for t in threads)
            or len(set(threads)) != len(threads)
        ):
            raise _fail(run_id, "thread counts")
        trials = config.get("trials")
        if not _integer(trials, 1, MAX_TRIALS):
            raise _fail(run_id, "trial count")
        cpus = config.get("cpus")
        if cpus is not None and (
            not isinstance(cpus, list)
            or not cpus
            or len(cpus) > MAX_CPU + 1
            or not all(_integer(c, 0, MAX_CPU) for c in cpus)
        ):
            raise _fail(run_id, "cpus")
        timeout = config.get("timeout_s")
        if timeout is not None and not (_number(timeout) and timeout <= MAX_TIMEOUT_S):
            raise _fail(run_id, "timeout")
        models = config.get("models")
        if not isinstance(models, list) or len(models) > MAX_PLAN_ITEMS:
            raise _fail(run_id, "model list")
        if len(models) * len(threads) * cast(int, trials) > MAX_PLAN_ITEMS:
            raise _fail(run_id, f"plan size (over {MAX_PLAN_ITEMS:,} measurements)")
        entries = tuple(model_entry_from_json(run_id, entry) for entry in models)
        if "models_dir" in config and not (
            _text(config["models_dir"]) and len(config["models_dir"]) <= 4096
        ):
            raise _fail(run_id, "models directory")
        runtime = config.get("runtime")
        if runtime is not None and not (_text(runtime) and len(runtime) <= 4096):
            raise _fail(run_id, "runtime")
        if config.get("regress_role") not in (None, "baseline", "candidate"):
            raise _fail(run_id, "regress role")
        settings = settings_from_json(run_id, config.get("settings", {}))
        assert isinstance(stored_device, str) and isinstance(trials, int)
        base = cls(
            device=stored_device,
            threads=tuple(threads),
            trials=trials,
            cpus=tuple(cpus) if cpus else None,
            settings=settings,
            timeout_s=float(timeout) if timeout is not None else None,
            models_dir=str(config["models_dir"]) if "models_dir" in config else None,
            models=entries,
            cooldown=cooldown_from_json(run_id, config.get("cooldown")),
            other={k: v for k, v in config.items() if k not in (*_BASE_KEYS, *_VERB_KEYS)},
        )
        return _with_verb_keys(base, config, run_id)


def _with_verb_keys(base: RunConfig, config: Mapping[str, Any], run_id: int | None) -> RunConfig:
    """``base`` with the verb-only keys of ``config``: checked when read back from a store
    (``run_id``), as given when a verb writes them (None)."""
    kind: RunKind = base.kind
    changes: dict[str, Any] = {}
    if "adaptive" in config:
        kind = "run"
        changes["adaptive"] = _adaptive(run_id, config["adaptive"])
    if "layers" in config:
        kind = "layers"
        changes["layers"] = _json_object(run_id, config["layers"], "layers scope")
    if "predict" in config:
        kind = "predict"
        changes["predict"] = _json_object(run_id, config["predict"], "predict round")
    if "campaign" in config:
        kind = "lab"
        campaign = config["campaign"]
        if (
            run_id is not None
            and campaign is not None
            and not (_text(campaign) and len(campaign) <= MAX_TEXT_CHARS)
        ):
            raise _fail(run_id, "campaign")
        changes["campaign"] = campaign
    if any(key in config for key in _REGRESS_KEYS):
        kind = "regress"
        changes["regress"] = _regress(run_id, config)
    unknown = {k: v for k, v in config.items() if k not in (*_BASE_KEYS, *_VERB_KEYS)}
    if run_id is None and unknown:
        changes["other"] = {**base.other, **unknown}
    return replace(base, kind=kind, **changes)


def _adaptive(run_id: int | None, value: object) -> AdaptivePlan | None:
    if value is None:
        return None
    if run_id is None:
        assert isinstance(value, Mapping)
        return AdaptivePlan(value["target_ci"], value["max_trials"], value.get("budget"))
    return adaptive_from_json(run_id, value)


def _json_object(run_id: int | None, value: object, what: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        if run_id is None:
            raise TypeError(f"the {what} is a JSON object")
        raise _fail(run_id, what)
    return dict(value)


def _regress(run_id: int | None, config: Mapping[str, Any]) -> RegressSide:
    def whole(v: object) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool))

    def real(v: object) -> bool:
        return v is None or (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        )

    checks: dict[str, Callable[[Any], bool]] = {
        "design": lambda v: v is None or _text(v),
        "pairing": lambda v: v is None or _text(v),
        "max_pairs": whole,
        "min_pairs": whole,
        "alpha": real,
        "budget_s": real,
        "bursts_per_side": whole,
        "burst_target_s": real,
        "seed": whole,
    }
    if run_id is not None:
        for key, check in checks.items():
            if not check(config.get(key)):
                raise _fail(run_id, f"regress setting {key}")
    return RegressSide(
        runtime=config.get("runtime"),
        role=config.get("regress_role"),
        **{key: config.get(key) for key in checks},
    )


def run_config(
    models: Sequence[ModelEntry],
    threads: Sequence[int],
    trials: int,
    cpus: Sequence[int] | None,
    settings: RunnerSettings,
    device: str,
    models_dir: Path,
    timeout_s: float | None,
    cooldown: CooldownPolicy | None = None,
) -> RunConfig:
    """A new run's configuration (a verb adds its own keys with ``with_extras``)."""
    return RunConfig(
        device=device,
        threads=tuple(threads),
        trials=trials,
        cpus=tuple(cpus) if cpus else None,
        settings=settings,
        timeout_s=timeout_s,
        models_dir=str(models_dir),
        models=tuple(models),
        cooldown=cooldown,
    )


# Checks, shared by every reader ----------------------------------------------------------


def _fail(run_id: int, what: str) -> StoredRunError:
    return StoredRunError(
        f"run {run_id}: the stored {what} is not valid (a damaged or crafted database); "
        "start a new run instead of resuming"
    )


def _integer(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _zero(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not _CONTROL.search(value)


def settings_from_json(run_id: int, value: object) -> RunnerSettings:
    """Runner settings: only ``RunnerSettings``' fields, each of the right type and range
    (a field not stored takes its default)."""
    if not isinstance(value, dict):
        raise _fail(run_id, "runner settings")
    names = {f.name for f in fields(RunnerSettings)}
    if set(value) - names:
        raise _fail(run_id, f"runner setting {sorted(set(value) - names)[0]!r}")
    checks: dict[str, Callable[[Any], bool]] = {
        "target_ci": lambda v: _number(v) and v <= 1,
        "min_time_s": lambda v: _number(v) and v <= MAX_TIME_S,
        "max_time_s": lambda v: _number(v) and v <= MAX_TIME_S,
        "min_samples": lambda v: _integer(v, 1, 10_000_000),
        "warmup_max_time_s": lambda v: _zero(v) or (_number(v) and v <= MAX_TIME_S),
        "fixed": lambda v: v is None or _integer(v, 1, 10_000_000),
        "opt_level": lambda v: v in _OPT_LEVELS,
        "profile": lambda v: isinstance(v, bool),
        "profile_runs": lambda v: _integer(v, 2, 10_000),
        "batch": lambda v: _integer(v, 1, MAX_BATCH),
    }
    for key, item in value.items():
        if not checks[key](item):
            raise _fail(run_id, f"runner setting {key}")
    return RunnerSettings(**value)


def model_entry_from_json(run_id: int, item: object) -> ModelEntry:
    """One stored model entry: name, path, sha256, spec (a table or null), shapes."""
    if not isinstance(item, dict):
        raise _fail(run_id, "model entry")
    if not _text(item.get("name")) or not _text(item.get("path")):
        raise _fail(run_id, "model name or path")
    if len(item["name"]) > 4096 or len(item["path"]) > 4096:
        raise _fail(run_id, "model name or path")
    if not isinstance(item.get("sha256"), str) or not _SHA256.match(item["sha256"]):
        raise _fail(run_id, "model sha256")
    if item.get("spec") is not None and not isinstance(item["spec"], dict):
        raise _fail(run_id, "model spec")
    shapes = item.get("shapes") or []
    if (
        not isinstance(shapes, list)
        or len(shapes) > 64
        or not all(isinstance(s, str) and len(s) <= 4096 and _SHAPE.match(s) for s in shapes)
    ):
        raise _fail(run_id, "model shapes")
    spec = None
    if item.get("spec"):
        try:
            spec = ModelSpec.from_json(json.dumps(item["spec"]))
            # The command line's own limit: a spec it would refuse to generate is refused.
            check_generation_memory(spec, DEFAULT_MAX_MEMORY_MIB)
        except (KeyError, TypeError, ValueError, OverflowError, UserError) as exc:
            raise _fail(run_id, "model spec") from exc
    return ModelEntry(item["name"], Path(item["path"]), item["sha256"], spec, tuple(shapes))


def adaptive_from_json(run_id: int, value: object) -> AdaptivePlan | None:
    """The stored ``adaptive`` entry of a run configuration, checked (None: absent)."""
    if value is None:
        return None
    bad = _fail(run_id, "adaptive-trials setting")
    if not isinstance(value, Mapping):
        raise bad
    target, most, budget = value.get("target_ci"), value.get("max_trials"), value.get("budget")
    if not isinstance(target, (int, float)) or isinstance(target, bool) or not 0 < target <= 1:
        raise bad
    if not isinstance(most, int) or isinstance(most, bool) or not 1 <= most <= 1000:
        raise bad
    if budget is not None and (
        not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= 10**9
    ):
        raise bad
    return AdaptivePlan(float(target), most, budget)


def cooldown_from_json(run_id: int, value: object) -> CooldownPolicy | None:
    """The stored ``cooldown`` entry, checked (None: no cool-down)."""
    if value is None:
        return None
    bad = _fail(run_id, "cool-down setting")
    if not isinstance(value, Mapping):
        raise bad
    numbers = {k: value.get(k) for k in ("below_c", "fixed_s", "max_wait_s")}
    for key, number in numbers.items():
        if number is None and key != "max_wait_s":
            continue
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise bad
        if not 0 <= number <= 86400:
            raise bad
    below, fixed, most = numbers["below_c"], numbers["fixed_s"], numbers["max_wait_s"]
    if (below is None) == (fixed is None):
        raise bad
    assert most is not None
    return CooldownPolicy(
        below_c=float(below) if below is not None else None,
        fixed_s=float(fixed) if fixed is not None else None,
        max_wait_s=float(most),
    )
