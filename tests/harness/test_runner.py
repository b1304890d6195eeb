"""Tests of the device-side agent (devices/agent) with the real onnxruntime.

Fast checks call ``cli.main(argv)`` in-process; anything that changes the process
(CPU affinity) or must prove the agent works as the pushed zipapp runs it as a subprocess.
The order-statistic CI is checked against scipy.stats.binom.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import stats

from devices.agent import bundle, cli, cpus, loop, record
from devices.agent import facts as agent_facts
from devices.agent import session as agent_session
from devices.agent import stats as agent_stats

AGENT_DIR = Path(cli.__file__).parent
RUNNER_PATH = bundle.zipapp_path(bundle.AGENT)

# Short limits so each run takes a fraction of a second.
QUICK = ["--min-time", "0", "--max-time", "0.3", "--warmup-max", "20", "--warmup-max-time", "0.1"]

TOP_KEYS = {
    "schema",
    "status",
    "error",
    "model",
    "runtime",
    "host_before",
    "host_after",
    "timings",
    "samples_ms",
    "reported_ms",
    "median_ci_ms",
    "iterations",
    "stop_reason",
    "settings",
    "memory",
    "inputs",
    "profile",
    "process_cpu_s",
    "reference_ms",
}
FACT_KEYS = {
    "platform",
    "machine",
    "python",
    "cpu_model",
    "logical_cores",
    "affinity",
    "thread_affinity",
    "cpus",
    "thermal",
    "loadavg",
    "time_unix",
}
SETTINGS_KEYS = {
    "target_ci",
    "min_samples",
    "max_samples",
    "min_time_s",
    "max_time_s",
    "warmup_max",
    "warmup_max_time_s",
    "fixed",
    "profile_runs",
    "seed",
    "cpus",
}
NODE_NAMES = {
    "conv0": "Conv",
    "conv0.relu": "Relu",
    "pool": "GlobalAveragePool",
    "flatten": "Flatten",
    "fc": "Gemm",
    "softmax": "Softmax",
}


def build_tiny_model(batch: int | str = "batch") -> onnx.ModelProto:
    """Conv+Relu+GlobalAveragePool+Flatten+Gemm+Softmax, opset 13, IR 7."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.1).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(8, np.float32), "b"),
        numpy_helper.from_array((rng.standard_normal((8, 10)) * 0.1).astype(np.float32), "fw"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fb"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["input", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c"], ["r"], name="conv0.relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [batch, 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    onnx.save(build_tiny_model(), str(path))
    return path


@pytest.fixture(scope="module")
def garbage_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "garbage.onnx"
    path.write_bytes(b"this is not an onnx model\x00\x01\x02" * 10)
    return path


def run_in_process(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any]:
    code = cli.main(argv)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, out
    return code, json.loads(lines[0])


def run_subprocess(argv: list[str], script: Path = RUNNER_PATH) -> tuple[int, Any, str]:
    completed = subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = completed.stdout.splitlines()
    assert len(lines) == 1, (completed.stdout, completed.stderr)
    return completed.returncode, json.loads(lines[0]), completed.stderr


def check_facts(facts: Any) -> None:
    assert set(facts) == FACT_KEYS
    assert isinstance(facts["platform"], str) and facts["platform"]
    assert isinstance(facts["machine"], str)
    assert isinstance(facts["python"], str)
    assert facts["cpu_model"] is None or isinstance(facts["cpu_model"], str)
    assert facts["logical_cores"] == os.cpu_count()
    assert facts["affinity"] is None or all(isinstance(c, int) for c in facts["affinity"])
    for cpu in facts["cpus"]:
        assert set(cpu) == {
            "cpu",
            "cur_khz",
            "max_khz",
            "scaling_max_khz",
            "scaling_min_khz",
            "governor",
        }
        assert isinstance(cpu["cpu"], int)
    for zone in facts["thermal"]:
        assert set(zone) == {"zone", "type", "temp_c"}
        assert isinstance(zone["temp_c"], float)
    assert facts["loadavg"] is None or len(facts["loadavg"]) == 3
    assert isinstance(facts["time_unix"], float)


def check_ok_document(doc: Any, model: Path) -> None:
    """Every key of the schema is present with the right type, and the values agree."""
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == record.SCHEMA == "mnbench.runner/1"
    assert doc["status"] == "ok"
    assert doc["error"] is None
    assert doc["model"]["path"] == str(model)
    assert doc["model"]["file_bytes"] == model.stat().st_size
    assert len(doc["model"]["sha256"]) == 64
    assert isinstance(doc["process_cpu_s"], float) and doc["process_cpu_s"] > 0
    assert isinstance(doc["reference_ms"], float) and doc["reference_ms"] > 0
    rt = doc["runtime"]
    assert set(rt) == {
        "name",
        "version",
        "available_providers",
        "providers",
        "session_options",
    }
    assert rt["name"] == "onnxruntime"
    assert rt["version"] == ort.__version__
    assert "CPUExecutionProvider" in rt["available_providers"]
    assert rt["providers"] == ["CPUExecutionProvider"]
    assert set(rt["session_options"]) == {
        "intra_op_threads",
        "inter_op_threads",
        "graph_optimization_level",
        "execution_mode",
        "spin",
    }
    check_facts(doc["host_before"])
    check_facts(doc["host_after"])
    assert doc["host_after"]["time_unix"] >= doc["host_before"]["time_unix"]
    timings = doc["timings"]
    assert set(timings) == {
        "session_create_ms",
        "first_inference_ms",
        "warmup_iterations",
        "warmup_s",
        "measure_s",
    }
    assert timings["session_create_ms"] > 0
    assert timings["first_inference_ms"] > 0
    assert timings["measure_s"] > 0
    samples = doc["samples_ms"]
    assert samples and all(isinstance(s, float) and s > 0 for s in samples)
    assert doc["iterations"] == len(samples)
    assert doc["reported_ms"] is None
    assert doc["stop_reason"] in {"ci_target", "max_time", "max_samples", "fixed"}
    assert set(doc["settings"]) == SETTINGS_KEYS
    memory = doc["memory"]
    assert memory["source"] == "VmHWM"  # Linux
    assert memory["peak_rss_after_load_bytes"] > 0
    assert memory["peak_rss_end_bytes"] >= memory["peak_rss_after_load_bytes"]
    for spec in doc["inputs"]:
        assert set(spec) == {"name", "shape", "dtype"}
    if doc["median_ci_ms"] is not None:
        low, high = doc["median_ci_ms"]
        median = float(np.median(samples))
        assert low <= median <= high


def check_error_document(doc: Any) -> None:
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == record.SCHEMA
    assert doc["status"] == "error"
    assert isinstance(doc["error"], str) and doc["error"]
    assert "\n" not in doc["error"]
    assert doc["samples_ms"] == []
    check_facts(doc["host_after"])


# --------------------------------------------------------------------------- whole runs


def test_default_run_document_is_complete(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), *QUICK, "--min-samples", "25"])
    assert code == 0
    check_ok_document(doc, tiny_model)
    assert doc["iterations"] >= 25
    assert doc["settings"]["min_samples"] == 25
    assert doc["settings"]["cpus"] is None
    assert doc["host_before"]["affinity"] == sorted(os.sched_getaffinity(0))
    options = doc["runtime"]["session_options"]
    assert options == {
        "intra_op_threads": 0,
        "inter_op_threads": 0,
        "graph_optimization_level": "all",
        "execution_mode": "sequential",
        "spin": True,
    }
    assert doc["inputs"] == [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert doc["profile"] is None


def test_fixed_gives_exactly_n_samples(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), *QUICK, "--fixed", "37"])
    assert code == 0
    assert len(doc["samples_ms"]) == 37
    assert doc["iterations"] == 37
    assert doc["stop_reason"] == "fixed"
    assert doc["settings"]["fixed"] == 37


def test_warmup_can_be_skipped(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), "--warmup-max", "0", "--fixed", "3"])
    assert code == 0
    assert doc["timings"]["warmup_iterations"] == 0


def test_session_options_are_applied_and_recorded(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    argv = [str(tiny_model), *QUICK, "--fixed", "5", "--threads", "1", "--inter-threads", "2"]
    argv += ["--opt-level", "basic", "--no-spin", "--parallel"]
    code, doc = run_in_process(capsys, argv)
    assert code == 0
    assert doc["runtime"]["session_options"] == {
        "intra_op_threads": 1,
        "inter_op_threads": 2,
        "graph_optimization_level": "basic",
        "execution_mode": "parallel",
        "spin": False,
    }


def test_max_samples_stops_the_run(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    argv = [str(tiny_model), *QUICK, "--min-samples", "10", "--max-samples", "12"]
    code, doc = run_in_process(capsys, [*argv, "--target-ci", "1e-9", "--max-time", "60"])
    assert code == 0
    assert doc["stop_reason"] == "max_samples"
    assert doc["iterations"] == 12


def test_max_time_stops_the_run(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    # More samples than 0.25 s can hold before the CI is first looked at: a tiny model's
    # samples fall on a few distinct 10 ns clock ticks, so even a 1e-9 target can be met by a
    # zero-width order-statistic interval, and only the sample floor keeps the rule away.
    floor = ["--min-samples", "100000000", "--max-samples", "100000000"]
    argv = [str(tiny_model), *QUICK, "--max-time", "0.25", "--target-ci", "1e-9", *floor]
    code, doc = run_in_process(capsys, argv)
    assert code == 0
    assert doc["stop_reason"] == "max_time"
    assert doc["settings"]["max_time_s"] == 0.25


def test_ci_target_stops_the_run(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    argv = [str(tiny_model), *QUICK, "--max-time", "30", "--target-ci", "0.5"]
    code, doc = run_in_process(capsys, [*argv, "--min-samples", "50"])
    assert code == 0
    assert doc["stop_reason"] == "ci_target"
    assert doc["iterations"] >= 50
    # The document's own samples satisfy the rule it claims.
    median, low, high = agent_stats.quantile_ci(doc["samples_ms"])
    assert agent_stats.relative_ci_half_width(median, low, high) <= 0.5


def test_symbolic_batch_defaults_to_one_and_shape_overrides(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), *QUICK, "--fixed", "3"])
    assert code == 0
    assert doc["inputs"][0]["shape"] == [1, 3, 32, 32]
    argv = [str(tiny_model), *QUICK, "--fixed", "3", "--shape", "input=4x3x32x32"]
    code, doc = run_in_process(capsys, argv)
    assert code == 0
    assert doc["inputs"][0]["shape"] == [4, 3, 32, 32]


def test_shape_must_agree_with_fixed_dimensions(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    argv = [str(tiny_model), *QUICK, "--fixed", "3", "--shape", "input=4x3x40x40"]
    code, doc = run_in_process(capsys, argv)
    assert code == 2
    check_error_document(doc)
    assert "dimension 2 is fixed at 32" in doc["error"]
    code, doc = run_in_process(capsys, [str(tiny_model), "--shape", "input=4x3x32"])
    assert code == 2
    assert "3 dimensions, the model declares 4" in doc["error"]


def test_shape_for_unknown_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tiny_model: Path
) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), "--shape", "image=1x3x32x32"])
    assert code == 2
    check_error_document(doc)
    assert "image" in doc["error"] and "input" in doc["error"]


def test_profile_names_match_graph_nodes(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, tmp_path: Path
) -> None:
    argv = [str(tiny_model), *QUICK, "--fixed", "3", "--opt-level", "disable"]
    before = set(Path(tempfile.gettempdir()).glob("mnbench_profile_*"))
    code, doc = run_in_process(capsys, [*argv, "--profile", "--profile-runs", "6"])
    assert code == 0
    profile = doc["profile"]
    assert set(profile) == set(NODE_NAMES)
    for name, entry in profile.items():
        assert entry["op_type"] == NODE_NAMES[name]
        assert entry["count"] == 5  # the first of the 6 runs is left out
        assert entry["median_us"] >= 0
    assert doc["settings"]["profile_runs"] == 6
    # The profile file and its directory are gone.
    assert set(Path(tempfile.gettempdir()).glob("mnbench_profile_*")) == before
    assert not list(Path.cwd().glob("onnxruntime_profile_*.json"))


def test_help_documents_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--threads", "--cpus", "--target-ci", "--fixed", "--profile", "--max-time"):
        assert flag in text
    assert f"default: {cli.DEFAULT_MIN_SAMPLES}" in text
    assert "exit codes" in text


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--threads", "-1"], "--threads"),
        (["--threads", "two"], "--threads"),
        (["--target-ci", "0"], "--target-ci"),
        (["--target-ci", "nan"], "--target-ci"),
        (["--min-samples", "20", "--max-samples", "10"], "--max-samples"),
        (["--max-time", "inf"], "--max-time"),
        (["--warmup-max-time", "inf"], "--warmup-max-time"),
        (["--fixed", "0"], "--fixed"),
        (["--opt-level", "turbo"], "--opt-level"),
        (["--cpus", "3-1"], "--cpus"),
        (["--shape", "input=1xAx3"], "--shape"),
        (["--provider", "NoSuchExecutionProvider"], "NoSuchExecutionProvider"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flags_give_usage_error_documents(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, flags: list[str], needle: str
) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), *flags])
    assert code == 2
    check_error_document(doc)
    assert needle in doc["error"]
    assert doc["model"]["path"] == str(tiny_model)


def test_garbage_model_is_a_model_error(garbage_model: Path) -> None:
    code, doc, _stderr = run_subprocess([str(garbage_model), *QUICK])
    assert code == 1
    check_error_document(doc)
    assert doc["error"].startswith("onnxruntime rejected the model")
    assert doc["model"]["file_bytes"] == garbage_model.stat().st_size
    assert doc["model"]["sha256"] is not None
    assert doc["runtime"]["version"] == ort.__version__


def test_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.onnx"
    code, doc, _stderr = run_subprocess([str(missing), *QUICK])
    assert code == 2
    check_error_document(doc)
    assert str(missing) in doc["error"]
    assert doc["model"] == {"path": str(missing), "file_bytes": None, "sha256": None}


def test_a_batch_measures_each_model_in_turn_and_goes_on_after_a_failure(
    tiny_model: Path, garbage_model: Path
) -> None:
    """Several models in one process: one document each, in order, with its place in the
    batch; the rejected one gets its error document and the next is still measured; the
    exit code is the worst; the process's peak RSS is not passed off as a later model's."""
    models = [tiny_model, garbage_model, tiny_model]
    completed = subprocess.run(
        [sys.executable, str(RUNNER_PATH), *map(str, models), *QUICK, "--fixed", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    docs = [json.loads(line) for line in completed.stdout.splitlines()]
    assert completed.returncode == 1, completed.stderr
    assert [d["status"] for d in docs] == ["ok", "error", "ok"]
    assert [d.pop("batch") for d in docs] == [{"index": i, "size": 3} for i in range(3)]
    check_ok_document(docs[0], tiny_model)
    check_error_document(docs[1])
    assert docs[1]["error"].startswith("onnxruntime rejected the model")
    assert docs[1]["model"]["path"] == str(garbage_model)
    last = docs[2]
    assert last["iterations"] == 4 and last["stop_reason"] == "fixed"
    assert last["memory"]["peak_rss_after_load_bytes"] is None
    assert last["memory"]["peak_rss_end_bytes"] is None
    assert last["host_before"]["time_unix"] >= docs[0]["host_after"]["time_unix"]


def test_serve_takes_one_model(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    code, doc = run_in_process(capsys, [str(tiny_model), str(tiny_model), "--serve"])
    assert code == 2
    check_error_document(doc)
    assert "--serve takes one model" in doc["error"]


# --------------------------------------------------------------------------- subprocess


def test_runs_as_a_standalone_file(tiny_model: Path, tmp_path: Path) -> None:
    """Copied alone into a directory, as on a device, the zipapp still works."""
    script = tmp_path / "agent.pyz"
    shutil.copy(RUNNER_PATH, script)
    code, doc, _stderr = run_subprocess([str(tiny_model), *QUICK, "--min-samples", "15"], script)
    assert code == 0
    check_ok_document(doc, tiny_model)
    assert doc["iterations"] >= 15


def test_zipapp_bytes_are_deterministic_and_hold_every_module() -> None:
    first = bundle.zipapp_bytes(bundle.AGENT)
    assert bundle.zipapp_bytes(bundle.AGENT) == first == RUNNER_PATH.read_bytes()
    assert bundle.zipapp_bytes(bundle.LIMITS) != first  # another entry point
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert "__main__.py" in names and "devices/__init__.py" in names
        # Only the agent: no other module of the devices package goes to a device.
        assert all(n.startswith("devices/agent/") for n in names if n.count("/") > 1)
        stub = archive.read("devices/__init__.py")
        assert stub != (AGENT_DIR.parent / "__init__.py").read_bytes()
        shipped = {n.split("/")[-1] for n in names if n.startswith("devices/agent/")}
        main_text = archive.read("__main__.py").decode()
    assert shipped == {p.name for p in AGENT_DIR.glob("*.py")}
    assert "from devices.agent.cli import main" in main_text
    with pytest.raises(ValueError):
        bundle.zipapp_bytes("os:system")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity")
def test_cpus_pins_affinity(tiny_model: Path) -> None:
    code, doc, _stderr = run_subprocess([str(tiny_model), *QUICK, "--fixed", "5", "--cpus", "0"])
    assert code == 0
    assert doc["settings"]["cpus"] == [0]
    assert doc["host_before"]["affinity"] == [0]
    assert doc["host_after"]["affinity"] == [0]
    # No onnxruntime or numpy thread escaped the mask (its default pool pins to cores).
    assert doc["host_after"]["thread_affinity"] == [0]
    assert doc["runtime"]["session_options"]["intra_op_threads"] == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity")
def test_cpus_outside_the_machine_is_a_usage_error(tiny_model: Path) -> None:
    cpu = 4096  # beyond any CPU this machine has
    code, doc, _stderr = run_subprocess([str(tiny_model), "--cpus", str(cpu)])
    assert code == 2
    check_error_document(doc)
    assert "--cpus" in doc["error"]


# --------------------------------------------------------------------------- the source


@pytest.mark.parametrize("module", sorted(p.name for p in AGENT_DIR.glob("*.py")))
def test_source_is_python38_and_self_contained(module: str) -> None:
    source = (AGENT_DIR / module).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            assert node.module is not None
            imported.add(node.module)
    project = {
        name
        for name in imported
        if name.split(".")[0] in {"harness", "devices", "mobilenet", "results", "reports"}
    }
    # Only the agent's own modules: nothing else of the project is on a device.
    assert all(name.startswith("devices.agent") for name in project), project
    top = {name.split(".")[0] for name in imported - project}
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime"}
    assert top - allowed == set()
    if imported:  # annotations stay strings on 3.8 (every module but the docstring-only one)
        assert "__future__" in top
    # Modules added to the standard library after 3.8 are not available on old boards.
    assert not top & {"zoneinfo", "graphlib", "tomllib"}


# --------------------------------------------------------------------------- statistics


def expected_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """The asv rule written with scipy: largest k with F(k) <= a/2, smallest with >= 1-a/2."""
    alpha = 1 - confidence
    cdf = stats.binom.cdf(np.arange(n), n, q)
    below = np.nonzero(cdf <= alpha / 2)[0]
    above = np.nonzero(cdf >= 1 - alpha / 2)[0]
    return (
        int(below[-1]) if below.size else None,
        int(above[0]) if above.size else None,
    )


@pytest.mark.parametrize("confidence", [0.95, 0.99])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_order_statistic_ranks_match_scipy(q: float, confidence: float) -> None:
    for n in [*range(1, 120), 250, 1001, 5000, 20000]:
        got = agent_stats.order_statistic_ci_ranks(n, q, confidence)
        assert got == expected_ranks(n, q, confidence), n
        low, high = got
        if low is not None and high is not None:
            coverage = stats.binom.cdf(high, n, q) - stats.binom.cdf(low, n, q)
            assert coverage >= confidence


def test_median_ci_known_values() -> None:
    # Six samples are the fewest with a bounded 95 % CI of the median (0.5**6 * 2 < 0.05).
    assert agent_stats.order_statistic_ci_ranks(5) == (None, None)
    assert agent_stats.order_statistic_ci_ranks(6) == (0, 5)
    # n = 100: the classic table gives the 40th and 61st order statistics (1-based).
    assert agent_stats.order_statistic_ci_ranks(100) == (39, 60)
    values = [float(v) for v in np.random.default_rng(1).permutation(np.arange(1, 101))]
    median, low, high = agent_stats.quantile_ci(values)
    assert median == 50.5
    assert (low, high) == (40.0, 61.0)
    assert agent_stats.relative_ci_half_width(median, low, high) == pytest.approx(10.5 / 50.5)
    median, low, high = agent_stats.quantile_ci([3.0, 1.0, 2.0])
    assert (median, low, high) == (2.0, None, None)
    assert agent_stats.relative_ci_half_width(median, low, high) == math.inf


def test_quantile_matches_numpy() -> None:
    values = list(np.random.default_rng(2).lognormal(size=57))
    for q in (0.1, 0.5, 0.9):
        assert agent_stats.quantile_ci(values, q)[0] == pytest.approx(float(np.quantile(values, q)))


# --------------------------------------------------------------------------- helpers


def test_parse_cpu_list() -> None:
    assert cpus.parse_cpu_list("0,1,4-7") == [0, 1, 4, 5, 6, 7]
    assert cpus.parse_cpu_list("3,3,2") == [2, 3]
    for bad in ("", "1,,2", "5-3", "a", "-1"):
        with pytest.raises(ValueError):
            cpus.parse_cpu_list(bad)


def test_parse_shape() -> None:
    assert cli.parse_shape("input=1x3x224x224") == ("input", [1, 3, 224, 224])
    assert cli.parse_shape("a=b=2X3") == ("a=b", [2, 3])
    for bad in ("input", "=1x3", "input=", "input=1x-3", "input=1xx3"):
        with pytest.raises(ValueError):
            cli.parse_shape(bad)


def test_make_inputs_are_seeded(tiny_model: Path) -> None:
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    first = agent_session.make_inputs(np, session, {}, seed=7)
    again = agent_session.make_inputs(np, session, {}, seed=7)
    other = agent_session.make_inputs(np, session, {}, seed=8)
    assert np.array_equal(first[0][1], again[0][1])
    assert not np.array_equal(first[0][1], other[0][1])
    assert first[0][1].dtype == np.float32


def test_warm_up_respects_its_caps(tiny_model: Path) -> None:
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    arrays = agent_session.make_inputs(np, session, {}, seed=0)
    binding, _keep = agent_session.bind(ort, session, arrays)
    session.run_with_iobinding(binding)
    agent_session.rebind_outputs(session, binding)
    # Windows need >= 5 iterations, so a cap of 3 is always what stops it.
    count, _seconds = loop.warm_up(session.run_with_iobinding, binding, 3, 10.0)
    assert count == 3
    count, _seconds = loop.warm_up(session.run_with_iobinding, binding, 1000, 0.0)
    assert count == 1
    # Outputs bound once are filled by later runs: a softmax sums to 1.
    probabilities = binding.copy_outputs_to_cpu()[0]
    assert probabilities.shape == (1, 10)
    assert float(probabilities.sum()) == pytest.approx(1.0, rel=1e-5)


def test_peak_rss_reads_vmhwm() -> None:
    rss, source = agent_facts.peak_rss()
    assert source == "VmHWM"
    assert rss is not None and rss > 0
    with open("/proc/self/status") as handle:
        line = next(x for x in handle if x.startswith("VmHWM:"))
    # The high-water mark only grows, and the runner reports it in bytes, not KiB.
    assert rss <= int(line.split()[1]) * 1024 < 4 * rss


def test_host_facts_never_raise_and_match_the_os() -> None:
    facts = agent_facts.collect_host_facts()
    check_facts(facts)
    assert facts["affinity"] == sorted(os.sched_getaffinity(0))
    assert [c["cpu"] for c in facts["cpus"]] == sorted(c["cpu"] for c in facts["cpus"])


def test_zipapp_in_a_cache_is_named_by_its_digest(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = bundle.zipapp_path(bundle.AGENT, cache)
    assert path.parent == cache
    assert path.name == f"agent-{bundle.zipapp_sha256(bundle.AGENT)[:16]}.pyz"
    assert bundle.zipapp_path(bundle.AGENT, cache) == path  # once per process
    assert path.read_bytes() == RUNNER_PATH.read_bytes()
    assert [p.name for p in cache.iterdir()] == [path.name]  # no partial file left
    # A cache that cannot be written falls back to a private temporary directory.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    fallback = bundle.zipapp_path(bundle.LIMITS, blocked / "cache")
    assert fallback.name == "limits.pyz" and fallback.is_file()
