"""onnxruntime_perf_test argv and output parsing (recorded outputs of several versions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.adb import AdbTransport
from devices.agent.record import SCHEMA
from harness.measure.perftest import PerfTestOutputError, parse_perf_test, perf_test_argv

DATA = Path(__file__).parent / "data" / "perftest"


def _recorded(name: str) -> str:
    """The fixture's output without its '#' header."""
    lines = (DATA / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#"))


def test_argv_with_libs_and_mask() -> None:
    argv = perf_test_argv(
        "/data/local/tmp/mnbench/onnxruntime_perf_test",
        "/data/local/tmp/mnbench/m.onnx",
        threads=4,
        runs=50,
        lib_dir="/data/local/tmp/mnbench",
        taskset_mask="f0",
    )
    assert argv == [
        "env",
        "LD_LIBRARY_PATH=/data/local/tmp/mnbench",
        "taskset",
        "f0",
        "/data/local/tmp/mnbench/onnxruntime_perf_test",
        "-e",
        "cpu",
        "-m",
        "times",
        "-r",
        "50",
        "-x",
        "4",
        "-I",
        "/data/local/tmp/mnbench/m.onnx",
    ]


def test_argv_plain() -> None:
    argv = perf_test_argv("/bin/pt", "/m.onnx", threads=1, runs=3, lib_dir=None, taskset_mask=None)
    assert argv[0] == "/bin/pt"
    assert argv[-2:] == ["-I", "/m.onnx"]
    with pytest.raises(ValueError):
        perf_test_argv("/bin/pt", "/m.onnx", threads=1, runs=0, lib_dir=None, taskset_mask=None)


def test_parse_1_23_android() -> None:
    doc = parse_perf_test(_recorded("ort-1.23.2-android-arm64.txt"), "", model_path="/m.onnx")
    assert doc["schema"] == SCHEMA
    assert doc["status"] == "ok"
    assert doc["error"] is None
    assert doc["samples_ms"] == []
    assert doc["reported_ms"] == pytest.approx(
        {
            "mean": 98.961997,
            "min": 95.8204,
            "max": 101.519,
            "p50": 99.5086,
            "p90": 101.519,
            "p95": 101.519,
            "p99": 101.519,
        }
    )
    assert doc["timings"]["session_create_ms"] == pytest.approx(217.932)
    assert doc["timings"]["first_inference_ms"] == 196
    assert doc["timings"]["warmup_iterations"] == 1
    assert doc["timings"]["measure_s"] == pytest.approx(0.49481)
    assert doc["iterations"] == 5
    assert doc["stop_reason"] == "fixed"
    assert doc["memory"] == {
        "peak_rss_after_load_bytes": None,
        "peak_rss_end_bytes": 271122432,
        "source": "perf_test",
    }
    options = doc["runtime"]["session_options"]
    assert options["intra_op_threads"] == 1
    assert options["spin"] is False
    assert doc["runtime"]["providers"] == ["CPUExecutionProvider"]
    assert doc["model"]["path"] == "/m.onnx"
    assert doc["settings"]["avg_cpu_usage_pct"] == 11
    json.dumps(doc, allow_nan=False)


def test_parse_older_average_wording() -> None:
    doc = parse_perf_test(_recorded("ort-cobalt100-linux-arm64.txt"), "", threads=8, runs=100)
    assert doc["reported_ms"]["mean"] == pytest.approx(1.85739)
    assert doc["reported_ms"]["p50"] == pytest.approx(1.85674)
    assert doc["reported_ms"]["p99"] == pytest.approx(1.90312)
    assert doc["iterations"] == 100
    assert doc["timings"]["session_create_ms"] == pytest.approx(10.2016)
    assert doc["timings"]["first_inference_ms"] == 2
    assert doc["memory"]["peak_rss_end_bytes"] == 36696064
    assert doc["runtime"]["session_options"]["intra_op_threads"] == 8


def test_parse_2019_wording() -> None:
    doc = parse_perf_test(_recorded("ort-2019-034db1c2-format.txt"), "")
    assert doc["reported_ms"] == {"mean": pytest.approx(20.6)}
    assert doc["iterations"] == 20
    assert doc["timings"]["measure_s"] == pytest.approx(0.412)
    assert doc["timings"]["session_create_ms"] is None
    assert doc["memory"]["peak_rss_end_bytes"] is None


def test_crlf_output() -> None:
    text = _recorded("ort-1.23.2-android-arm64.txt").replace("\n", "\r\n")
    assert parse_perf_test(text, "")["reported_ms"]["p50"] == pytest.approx(99.5086)


def test_no_latency_is_one_line_error() -> None:
    stderr = "some log\nLoad model from /data/local/tmp/x.onnx failed: No such file\n"
    with pytest.raises(PerfTestOutputError) as error:
        parse_perf_test("Setting intra_op_num_threads to 1\n", stderr)
    assert "printed no latency" in error.value.message
    assert "Load model from" in error.value.message
    assert "\n" not in error.value.message


def test_end_to_end_on_simulated_phone(adb_transport: AdbTransport, tmp_path: Path) -> None:
    """Push a stand-in perf_test, run the argv through adb, parse what it printed."""
    recorded = _recorded("ort-1.23.2-android-arm64.txt")
    (tmp_path / "out.txt").write_text(recorded)
    tool = tmp_path / "onnxruntime_perf_test"
    tool.write_text(
        '#!/bin/sh\necho "LD_LIBRARY_PATH=$LD_LIBRARY_PATH args=$*" >&2\n'
        'exec cat "$(dirname "$0")/out.txt"\n'
    )
    tool.chmod(0o755)
    work = adb_transport.workdir
    adb_transport.push(tool, f"{work}/bin/onnxruntime_perf_test")
    adb_transport.push(tmp_path / "out.txt", f"{work}/bin/out.txt")
    argv = perf_test_argv(
        f"{work}/bin/onnxruntime_perf_test",
        f"{work}/m.onnx",
        threads=1,
        runs=5,
        lib_dir=f"{work}/bin",
        taskset_mask="1",
    )
    done = adb_transport.run(argv, timeout_s=60)
    assert f"LD_LIBRARY_PATH={work}/bin args=-e cpu -m times -r 5 -x 1 -I {work}/m.onnx" in (
        done.stderr
    )
    doc = parse_perf_test(done.stdout, done.stderr, threads=1, runs=5)
    assert doc["reported_ms"]["p50"] == pytest.approx(99.5086)
