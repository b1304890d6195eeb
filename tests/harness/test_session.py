"""The measurement session, the backend seam and the shared options, on this machine."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from devices.device import DEVICE_KINDS, KIND_TRAITS, DeviceConfig
from devices.transport import LocalTransport
from harness.agent import cli as runner
from harness.commands.options import add_stopping_arguments, settings_from_args
from harness.measure.backends import (
    LIMITS_SCHEMA,
    RUNNER_SCHEMA,
    AgentBackend,
    PerfTestBackend,
    last_document,
)
from harness.measure.session import MeasurementSession, Selection
from harness.measure.sweep import RunnerSettings, Sweep, default_cpu_count
from results.store import Store


def test_every_kind_of_device_has_its_traits() -> None:
    assert set(KIND_TRAITS) == set(DEVICE_KINDS)
    assert DeviceConfig("phone", kind="adb", serial="s").has_python is False
    assert DeviceConfig("phone", kind="adb", serial="s", python="python3").has_python is True
    assert DeviceConfig("local").this_machine and DeviceConfig("local").has_python


@pytest.mark.parametrize(
    ("device", "backend"),
    [
        (DeviceConfig("local"), AgentBackend),
        (DeviceConfig("pi", kind="ssh", host="pi"), AgentBackend),
        (DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf"), PerfTestBackend),
        (
            DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf", python="py"),
            AgentBackend,
        ),
    ],
)
def test_the_backend_is_chosen_once_from_the_device(
    tmp_path: Path, device: DeviceConfig, backend: type
) -> None:
    with Store.open(tmp_path / "db.sqlite") as store, LocalTransport() as transport:
        sweep = Sweep(device, store, RunnerSettings(), None, transport)
        assert isinstance(sweep.backend, backend)
        assert sweep.backend is sweep.backend


def test_a_phone_without_python_has_no_limits_probe(tmp_path: Path) -> None:
    phone = DeviceConfig("phone", kind="adb", serial="s", perf_test="/x/perf")
    with Store.open(tmp_path / "db.sqlite") as store, LocalTransport() as transport:
        doc = Sweep(phone, store, RunnerSettings(), None, transport).backend.measure_limits(1, None)
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
        directory = session.sweep.session_dir
        assert directory is not None and Path(directory, "limits.pyz").is_file()
    assert not Path(directory).exists()  # closing removed what was pushed
    assert "kept the work directory" not in capsys.readouterr().err


def test_other_settings_apply_to_the_sessions_sweeps_and_later_runs(tmp_path: Path) -> None:
    """``predict`` fits with profiles and validates without, in one session: the new
    settings reach the sweep already made, the runner's argv and the runs created after."""
    profiled = RunnerSettings(max_time_s=2.0, profile=True)
    with (
        Store.open(tmp_path / "db.sqlite") as store,
        MeasurementSession(DeviceConfig("local"), profiled, store=store) as session,
    ):
        sweep = session.sweep
        assert "--profile" in sweep.settings.argv()
        plain = RunnerSettings(max_time_s=40.0)
        session.use_settings(plain)
        assert session.sweep is sweep and sweep.settings == plain
        assert "--profile" not in sweep.settings.argv()
        assert sweep.timeout_s == session.timeout_s > 4 * 40.0
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
        session.sweep.push_file(Path(runner.__file__), "cli.py")
        directory = session.sweep.session_dir
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
