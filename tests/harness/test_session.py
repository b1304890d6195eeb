"""The measurement session, the measuring-method seam and the shared options, on this machine."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from devices.agent import cli as runner
from devices.device import DEVICE_KINDS, KIND_TRAITS, DeviceConfig
from devices.local import LocalTransport
from harness.commands.measuring import add_stopping_arguments, settings_from_args
from harness.measure.methods import (
    LIMITS_SCHEMA,
    RUNNER_SCHEMA,
    AgentMethod,
    PerfTestMethod,
    last_document,
)
from harness.measure.plan import RunnerSettings
from harness.measure.session import MeasurementSession, Selection
from harness.measure.sweep import default_cpu_count
from results.store import Store


def test_every_kind_of_device_has_its_traits() -> None:
    assert set(KIND_TRAITS) == set(DEVICE_KINDS)
    assert DeviceConfig("phone", kind="adb", serial="s").has_python is False
    assert DeviceConfig("phone", kind="adb", serial="s", python="python3").has_python is True
    assert DeviceConfig("local").this_machine and DeviceConfig("local").has_python


@pytest.mark.parametrize(
    ("device", "method"),
    [
        (DeviceConfig("local"), AgentMethod),
        (DeviceConfig("pi", kind="ssh", host="pi"), AgentMethod),
        (DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf"), PerfTestMethod),
        (
            DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf", python="py"),
            AgentMethod,
        ),
    ],
)
def test_the_method_is_chosen_once_from_the_device(
    tmp_path: Path, device: DeviceConfig, method: type
) -> None:
    with Store.open(tmp_path / "db.sqlite") as store, LocalTransport() as transport:
        session = MeasurementSession(device, RunnerSettings(), store=store, transport=transport)
        assert isinstance(session.method, method)
        assert session.method is session.method


def test_a_phone_without_python_has_no_limits_probe(tmp_path: Path) -> None:
    phone = DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf")
    with Store.open(tmp_path / "db.sqlite") as store, LocalTransport() as transport:
        session = MeasurementSession(phone, RunnerSettings(), store=store, transport=transport)
        doc = session.method.measure_limits(1, None)
    assert doc == {"schema": LIMITS_SCHEMA, "status": "error", "error": "no Python on the device"}


def test_last_document_is_the_last_line_of_the_schema() -> None:
    lines = [
        json.dumps({"schema": RUNNER_SCHEMA, "n": 1}),
        "[1, 2]",
        "  " + json.dumps({"schema": RUNNER_SCHEMA, "n": 2}),
        json.dumps({"schema": "other/1", "n": 3}),
        "{not json",
    ]
    assert last_document("\n".join(lines), RUNNER_SCHEMA) == {"schema": RUNNER_SCHEMA, "n": 2}
    assert last_document("\n".join(lines), LIMITS_SCHEMA) is None


def test_session_selects_probes_and_runs_the_limits_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = RunnerSettings()
    with (
        Store.open(tmp_path / "db.sqlite") as store,
        MeasurementSession(DeviceConfig("local"), settings, store=store) as session,
    ):
        everything = session.select(None)
        assert everything.cpus is None
        assert everything.threads == [default_cpu_count(session.facts)]
        assert session.facts["device"] == {"name": "local", "kind": "local"}
        first = min(os.sched_getaffinity(0))
        pinned = session.select(str(first))
        assert pinned == Selection([first], [1])
        assert session.select(str(first), [2]).threads == [2]
        doc = session.measure_limits(pinned)
        assert doc["schema"] == LIMITS_SCHEMA and doc["status"] == "ok", doc
        assert doc["cpus"] == [first] and doc["threads"] == 1
        directory = session.session_dir
        assert directory is not None and Path(directory, "limits.pyz").is_file()
    assert not Path(directory).exists()  # closing removed what was pushed
    assert "kept the work directory" not in capsys.readouterr().err


def test_other_settings_apply_to_the_session_and_later_runs(tmp_path: Path) -> None:
    """``predict`` fits with profiles and validates without, in one session: the new
    settings reach the method already chosen, the runner's argv and the runs created after."""
    profiled = RunnerSettings(max_time_s=2.0, profile=True)
    with (
        Store.open(tmp_path / "db.sqlite") as store,
        MeasurementSession(DeviceConfig("local"), profiled, store=store) as session,
    ):
        method = session.method
        assert "--profile" in session.settings.argv()
        plain = RunnerSettings(max_time_s=40.0)
        session.use_settings(plain)
        assert session.method is method and session.settings == plain
        assert "--profile" not in session.settings.argv()
        assert session.timeout_s > 4 * 40.0
        selection = session.select(None)
        run_id = session.create_run(
            [], selection, 1, device_arg="local", models_dir=tmp_path, label=None, holder=None
        )
        assert store.get_run(run_id).config["settings"]["profile"] is False


def test_a_kept_session_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        Store.open(tmp_path / "db.sqlite") as store,
        MeasurementSession(
            DeviceConfig("local"), RunnerSettings(), store=store, keep_workdir=True
        ) as session,
    ):
        session.push_file(Path(runner.__file__), "cli.py")
        directory = session.session_dir
    assert directory is not None and Path(directory, "cli.py").is_file()
    assert f"kept the work directory {directory}\n" in capsys.readouterr().err
    shutil.rmtree(Path(directory).parent)  # the kept temporary work directory


def test_target_ci_is_a_percent_on_the_command_line_and_a_fraction_for_the_runner() -> None:
    parser = argparse.ArgumentParser()
    add_stopping_arguments(parser, 10.0)
    default = parser.parse_args([])
    assert default.target_ci_fraction == runner.DEFAULT_TARGET_CI
    assert settings_from_args(default) == RunnerSettings()
    given = parser.parse_args(["--target-ci", "2.5"])
    assert settings_from_args(given).target_ci == pytest.approx(0.025)
    assert "(default 1)" in " ".join(parser.format_help().split())
    with pytest.raises(SystemExit):
        parser.parse_args(["--target-ci", "101"])


def test_a_batched_sweep_measures_consecutive_items_in_one_process(tmp_path: Path) -> None:
    """``RunnerSettings.batch``: trial-major items in groups of at most ``batch`` per runner
    process, each model once a group, so a model's trials are in different processes; a
    model the runtime rejects fails alone; every item is its own stored measurement with the
    group's guard record; a resumed plan measures only what is missing."""
    from harness.measure.plan import ModelEntry, PlanItem
    from harness.measure.sweep import batches, prepare_models, run_plan
    from mobilenet.spec import ModelSpec

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model" * 10)
    settings = RunnerSettings(fixed=3, min_time_s=0.0, max_time_s=1.0, batch=3)
    with (
        Store.open(tmp_path / "db.sqlite") as store,
        MeasurementSession(DeviceConfig("local"), settings, store=store) as session,
    ):
        specs = [ModelSpec(0.25, 96), ModelSpec(0.25, 128), ModelSpec(0.5, 96)]
        a, b, c = prepare_models(specs, tmp_path / "models", store)
        bad = ModelEntry("garbage", garbage, "0" * 64)
        models = [a, b, bad, c]
        plan = [PlanItem(m, 1, trial, None) for trial in (1, 2) for m in models]
        groups = batches(plan, 3)
        assert [[(i.model.name, i.trial) for i in g] for g in groups] == [
            [(a.name, 1), (b.name, 1), ("garbage", 1)],
            [(c.name, 1), (a.name, 2), (b.name, 2)],
            [("garbage", 2), (c.name, 2)],
        ]
        selection = session.select(None, [1])
        run_id = session.create_run(
            models, selection, 2, device_arg="local", models_dir=tmp_path, label=None, holder=None
        )
        outcome = run_plan(session, run_id, plan[:5])
        assert outcome.measured == 5 and len(outcome.failures) == 1
        outcome = run_plan(session, run_id, plan)  # the same plan again: the rest
        assert outcome.skipped == 5 and outcome.measured == 3
        rows = sorted(store.measurement_rows([run_id]), key=lambda row: row["id"])
        assert store.get_run(run_id).config["settings"]["batch"] == 3
    docs = [
        json.loads(r["document"]) if isinstance(r["document"], str) else r["document"] for r in rows
    ]
    assert [(r["status"], d["batch"]) for r, d in zip(rows, docs, strict=True)] == [
        ("ok", {"index": 0, "size": 3}),
        ("ok", {"index": 1, "size": 3}),
        ("failed", {"index": 2, "size": 3}),
        ("ok", {"index": 0, "size": 2}),  # the first run stopped after 5 items
        ("ok", {"index": 1, "size": 2}),
        ("ok", {"index": 0, "size": 3}),  # resumed: b 2, garbage 2, c 2
        ("failed", {"index": 1, "size": 3}),
        ("ok", {"index": 2, "size": 3}),
    ]
    assert "onnxruntime rejected" in str(rows[2]["reason"])
    assert docs[0]["guards"] == docs[1]["guards"] == docs[2]["guards"] != docs[3]["guards"]
    ok = [doc for doc, row in zip(docs, rows, strict=True) if row["status"] == "ok"]
    assert len(ok) == 6 and all(len(doc["samples_ms"]) == 3 for doc in ok)
