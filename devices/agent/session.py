"""The onnxruntime side of a run: session options, seeded inputs, IO binding, profiling.

Inputs are bound once as OrtValues and outputs once to the buffers of the first inference,
so the timed loop measures ``run_with_iobinding`` alone. The profile comes from a separate
session with onnxruntime's profiler on; its Chrome-trace events (``*_kernel_time``, see
``onnxruntime/core/common/profiler.cc``) are summarised per node, the first run left out.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import tempfile
from typing import Any

from devices.agent.errors import ModelError, UsageError, one_line
from devices.agent.record import NodeProfile

OPT_LEVELS = ("disable", "basic", "extended", "all")
_OPT_LEVEL_ATTR = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# onnxruntime's tensor type strings -> numpy dtype names.
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def session_options(ort: Any, args: argparse.Namespace, profile_prefix: str | None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = args.inter_threads
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _OPT_LEVEL_ATTR[args.opt_level]
    )
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if args.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if args.spin else "0")
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def create_session(ort: Any, args: argparse.Namespace, profile_prefix: str | None) -> Any:
    options = session_options(ort, args, profile_prefix)
    try:
        return ort.InferenceSession(args.model, sess_options=options, providers=[args.provider])
    except Exception as error:
        raise ModelError(f"onnxruntime rejected the model: {one_line(error)}") from error


def make_inputs(
    np: Any, session: Any, shapes: dict[str, list[int]], seed: int
) -> list[tuple[str, Any]]:
    """Seeded random arrays, one per declared input; symbolic dims = 1 unless --shape."""
    rng = np.random.default_rng(seed)
    declared = session.get_inputs()
    unknown = set(shapes) - {node.name for node in declared}
    if unknown:
        raise UsageError(
            f"--shape names an input the model does not have: {', '.join(sorted(unknown))} "
            f"(inputs: {', '.join(node.name for node in declared)})"
        )
    arrays = []
    for node in declared:
        dtype = _ORT_DTYPES.get(node.type)
        if dtype is None:
            raise ModelError(f"input {node.name!r} has unsupported type {node.type}")
        if node.name in shapes:
            shape = shapes[node.name]
            if len(shape) != len(node.shape):
                raise UsageError(
                    f"--shape {node.name} has {len(shape)} dimensions, "
                    f"the model declares {len(node.shape)}"
                )
            for axis, (wanted, declared_dim) in enumerate(zip(shape, node.shape)):
                if isinstance(declared_dim, int) and declared_dim >= 0 and wanted != declared_dim:
                    raise UsageError(
                        f"--shape {node.name}: dimension {axis} is fixed at {declared_dim} "
                        f"by the model, not {wanted}"
                    )
        else:
            shape = [d if isinstance(d, int) and d >= 0 else 1 for d in node.shape]
        if dtype.startswith("float"):
            array = rng.standard_normal(shape).astype(dtype)
        elif dtype == "bool":
            array = rng.integers(0, 2, size=shape).astype(bool)
        else:
            array = rng.integers(0, 10, size=shape).astype(dtype)
        arrays.append((node.name, np.ascontiguousarray(array)))
    return arrays


def bind(ort: Any, session: Any, arrays: list[tuple[str, Any]]) -> tuple[Any, list[Any]]:
    """IO binding with inputs bound once as OrtValues and outputs bound to CPU."""
    binding = session.io_binding()
    keep = []
    for name, array in arrays:
        value = ort.OrtValue.ortvalue_from_numpy(array)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for node in session.get_outputs():
        binding.bind_output(node.name, "cpu")
    return binding, keep


def rebind_outputs(session: Any, binding: Any) -> list[Any]:
    """After the first run, bind the outputs it produced, so later runs reuse the buffers."""
    values = binding.get_outputs()
    for node, value in zip(session.get_outputs(), values):
        binding.bind_ortvalue_output(node.name, value)
    return list(values)


def profile_nodes(
    ort: Any, args: argparse.Namespace, arrays: list[tuple[str, Any]]
) -> dict[str, NodeProfile]:
    """Per-node kernel times from a separate profiling session (first run left out)."""
    workdir = tempfile.mkdtemp(prefix="mnbench_profile_")
    try:
        session = create_session(ort, args, os.path.join(workdir, "profile"))
        binding, _keep = bind(ort, session, arrays)
        for _ in range(args.profile_runs):
            session.run_with_iobinding(binding)
        path = session.end_profiling()
        with open(path) as handle:
            events = json.load(handle)
    finally:
        for leftover in glob.glob(os.path.join(workdir, "*")):
            with contextlib.suppress(OSError):
                os.remove(leftover)
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
    if isinstance(events, dict):  # some versions wrap events in {"traceEvents": [...]}
        events = events.get("traceEvents", [])
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if isinstance(e, dict) and e.get("name") == "model_run" and "ts" in e and "dur" in e
    )
    first_run = runs[0] if runs else None
    durations: dict[str, list[float]] = {}
    op_types: dict[str, str] = {}
    suffix = "_kernel_time"
    for event in events:
        if not isinstance(event, dict) or event.get("cat") != "Node":
            continue
        name = event.get("name", "")
        if not name.endswith(suffix) or "dur" not in event:
            continue
        if first_run is not None and first_run[0] <= event.get("ts", -1) <= first_run[1]:
            continue
        node = name[: -len(suffix)]
        durations.setdefault(node, []).append(float(event["dur"]))
        op_types[node] = str(event.get("args", {}).get("op_name", ""))
    summary: dict[str, NodeProfile] = {}
    for node, values in durations.items():
        values.sort()
        n = len(values)
        median = (values[(n - 1) // 2] + values[n // 2]) / 2.0
        summary[node] = {"op_type": op_types[node], "median_us": median, "count": n}
    return summary
