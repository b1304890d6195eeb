"""The host's measurement record: a real agent document parsed once into a frozen record,
old or foreign documents tolerated, and the within-process CI the agent's stopping rule used."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devices.agent import stats as agent_stats
from devices.agent.bundle import AGENT, zipapp_path
from devices.agent.record import SCHEMA
from results.record import Measurement, RecordError
from results.stats import within_process_median_ci
from tests.fixtures.build_arm64_sysroot import tiny_model_bytes

QUICK = ["--min-time", "0", "--max-time", "0.3", "--warmup-max", "20", "--warmup-max-time", "0.1"]


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model_bytes())
    return path


def test_real_agent_document(tiny_model: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(zipapp_path(AGENT)), str(tiny_model), *QUICK, "--fixed", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    document = json.loads(done.stdout)
    record = Measurement.from_document(done.stdout)
    assert record == Measurement.from_document(document)
    assert record.is_agent_document and record.schema == SCHEMA
    assert record.status == "ok" and record.stop_reason == "fixed"
    assert record.samples_ms == tuple(document["samples_ms"]) and len(record.samples_ms) == 30
    assert record.iterations == 30
    assert record.model_sha256 == document["model"]["sha256"]
    assert record.runtime_version == document["runtime"]["version"]
    assert record.host_before["cpus"] == document["host_before"]["cpus"]
    assert record.document is document or record.document == document
    # The CI the agent printed is the order-statistic CI of its samples (ns, rounded to ms).
    assert record.median_ci_ms is not None
    low, high = within_process_median_ci(record.samples_ms)
    assert low is not None and high is not None
    assert record.median_ci_ms == pytest.approx((low, high), abs=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "error"  # type: ignore[misc]


def test_within_process_ci_is_the_agents_definition() -> None:
    samples = [float(v) for v in range(1, 101)]
    record = Measurement.from_document({"schema": SCHEMA, "samples_ms": samples})
    _median, low, high = agent_stats.quantile_ci(samples)
    assert record.median_ci_ms is None  # not in the document: recomputed
    assert record.within_process_ci_ms() == (low, high) == (40.0, 61.0)
    assert within_process_median_ci([]) == (None, None)
    assert within_process_median_ci([1.0, 2.0]) == (None, None)  # unbounded


def test_old_and_foreign_documents_are_tolerated() -> None:
    record = Measurement.from_document(
        {
            "samples_ms": [1.0, "x", None, float("inf"), 2.0],
            "reported_ms": {"p50": 3.0, "bad": "y"},
            "settings": "not a mapping",
            "model": {"path": 7},
            "median_ci_ms": [1.0],
            "iterations": True,
        }
    )
    assert record.samples_ms == (1.0, 2.0)
    assert dict(record.reported_ms) == {"p50": 3.0}
    assert record.min_samples is None and record.model_path is None
    assert record.median_ci_ms is None and record.iterations is None
    assert not record.is_agent_document
    for bad in ([1, 2], "not json", "[1]"):
        with pytest.raises(RecordError):
            Measurement.from_document(bad)


def test_the_store_keeps_the_document_and_returns_records(tmp_path: Path) -> None:
    from results.store import Store
    from tests.results.test_store import runner_document

    document = runner_document([1.0, 2.0, 3.0], reported_ms=None)
    with Store.open(tmp_path / "db.sqlite") as store:
        run_id = store.create_run(
            device="local",
            device_kind="local",
            device_facts={},
            config={},
            harness_version="0",
            runtime_version=None,
            label=None,
        )
        store.add_measurement(
            run_id=run_id,
            model_sha256="x" * 64,
            config={"threads": 1, "cpus": None},
            trial=1,
            status="ok",
            reason=None,
            document=document,
        )
        [(measurement_id, record)] = store.measurement_records([run_id])
    assert measurement_id >= 1
    assert record.samples_ms == (1.0, 2.0, 3.0) and record.runtime_version == "1.31.1"
    assert dict(record.document) == document
