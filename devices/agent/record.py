"""The measurement document the agent prints: its schema name and its keys as TypedDicts.

One document per model measured (one per process, unless the process measured a batch),
printed as one compact JSON line on stdout (also on failure, then ``status`` is ``"error"``
and ``error`` one line). Keys marked + in the comments are additions to the base layout. The
host parses the document once into a typed record (``results/record.py``); other tools'
output converted to this layout (Android's ``onnxruntime_perf_test``) has ``samples_ms``
empty and ``reported_ms`` set.

In an error document the parts not reached stay null or empty (``settings`` and
``session_options`` are null only when the flags could not be parsed). In agent mode
(``--serve``) the document is the ready line and carries ``agent`` as well.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

SCHEMA = "mnbench.runner/1"
"""The schema name every measurement document carries (perf_test conversions included)."""


class CpuFacts(TypedDict):
    cpu: int
    cur_khz: int | None
    max_khz: int | None  # cpuinfo_max_freq: the hardware's maximum
    scaling_max_khz: int | None  # + the governor's limits (a thermal cap lowers the max)
    scaling_min_khz: int | None  # +
    governor: str | None


class ThermalFacts(TypedDict):
    zone: str
    type: str
    temp_c: float


class HostFacts(TypedDict):
    """FACTS: the host at one moment (before and after the run)."""

    platform: str
    machine: str
    python: str
    cpu_model: str | None
    logical_cores: int | None
    affinity: list[int] | None
    thread_affinity: list[int] | None  # + union over all threads
    cpus: list[CpuFacts]
    thermal: list[ThermalFacts]
    loadavg: list[float] | None
    time_unix: float


class ModelFacts(TypedDict):
    path: str
    file_bytes: int | None
    sha256: str | None


class SessionOptions(TypedDict):
    intra_op_threads: int  # as used: --threads 0 with --cpus becomes the number of CPUs
    inter_op_threads: int
    graph_optimization_level: str  # "disable" | "basic" | "extended" | "all"
    execution_mode: str  # "sequential" | "parallel"
    spin: bool


class Runtime(TypedDict):
    name: str  # "onnxruntime"
    version: str | None
    available_providers: list[str]
    providers: list[str]
    session_options: SessionOptions | None


class Timings(TypedDict):
    session_create_ms: float | None
    first_inference_ms: float | None
    warmup_iterations: int
    warmup_s: float  # +
    measure_s: float


class Settings(TypedDict):
    target_ci: float
    min_samples: int
    max_samples: int
    min_time_s: float
    max_time_s: float
    warmup_max: int
    warmup_max_time_s: float  # +
    fixed: int | None  # +
    profile_runs: int | None  # +
    seed: int
    cpus: list[int] | None


class Memory(TypedDict):
    peak_rss_after_load_bytes: int | None
    peak_rss_end_bytes: int | None
    source: str | None  # "VmHWM" | "ru_maxrss"


class InputFacts(TypedDict):
    name: str
    shape: list[int]  # as fed
    dtype: str


class NodeProfile(TypedDict):
    op_type: str
    median_us: float
    count: int


class AgentInfo(TypedDict):
    pid: int
    pgid: int


class BatchInfo(TypedDict):
    index: int  # 0-based position of this model in the process's batch
    size: int


class _DocumentKeys(TypedDict):
    schema: str  # SCHEMA
    status: str  # "ok" | "error"
    error: str | None
    model: ModelFacts
    runtime: Runtime
    host_before: HostFacts | None
    host_after: HostFacts | None
    timings: Timings
    samples_ms: list[float]  # one per timed inference, ns resolution
    reported_ms: dict[str, float] | None  # set only by parsers of other tools' output
    median_ci_ms: list[float] | None  # + 95 % CI of the median (stats.py), null if unbounded
    iterations: int  # == len(samples_ms)
    stop_reason: str | None  # "ci_target" | "max_time" | "max_samples" | "fixed"
    settings: Settings | None
    memory: Memory
    inputs: list[InputFacts]
    profile: dict[str, NodeProfile] | None  # node name -> summary of its kernel times
    process_cpu_s: float | None  # + user + system CPU time of this run, all threads
    reference_ms: float | None  # + the reference workload's median (loop.reference_ms)


class Document(_DocumentKeys, total=False):
    """The whole document; ``agent`` only in agent mode, ``batch`` only when the process
    measured several models (``cli.py``)."""

    agent: AgentInfo
    batch: BatchInfo


def new_document(model_path: str) -> Document:
    """The document with every key present; fields fill in as the run gets further."""
    return {
        "schema": SCHEMA,
        "status": "error",
        "error": None,
        "model": {"path": model_path, "file_bytes": None, "sha256": None},
        "runtime": {
            "name": "onnxruntime",
            "version": None,
            "available_providers": [],
            "providers": [],
            "session_options": None,
        },
        "host_before": None,
        "host_after": None,
        "timings": {
            "session_create_ms": None,
            "first_inference_ms": None,
            "warmup_iterations": 0,
            "warmup_s": 0.0,
            "measure_s": 0.0,
        },
        "samples_ms": [],
        "reported_ms": None,
        "median_ci_ms": None,
        "iterations": 0,
        "stop_reason": None,
        "settings": None,
        "memory": {"peak_rss_after_load_bytes": None, "peak_rss_end_bytes": None, "source": None},
        "inputs": [],
        "profile": None,
        "process_cpu_s": None,
        "reference_ms": None,
    }


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN/inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def to_ms(ns: float) -> float:
    return round(ns / 1e6, 6)
