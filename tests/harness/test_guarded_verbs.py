"""Device guards on every verb that measures through a session: layers, regress, predict.

The guards of ``run`` (tests/harness/test_trust_runs.py) are attached by the measurement
session, so ``layers``, ``regress`` (each trial, or each process pair) and ``predict`` get
the same record, the same flags and the same cool-down. Real parts: this machine with a
real competing CPU load started by the test (bounded, pinned to one core), and the adb
simulator's phone with its thermal model through the real adb client.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.cli import main
from results.store import Store
from tests.adbsim import ThermalModel, pixel_like
from tests.fixtures.adb import MakePhone
from tests.harness.test_stored_runs import assert_configs_round_trip

FAST = ["--min-time", "0.05", "--max-time", "0.3", "--quiet"]


def _documents(db: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select document from measurements order by id").fetchall()
    finally:
        con.close()
    return [json.loads(text) for (text,) in rows if text]


def _competitor(cpu: int, seconds: float) -> None:
    os.sched_setaffinity(0, {cpu})
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@contextmanager
def competing_load(cpu: int) -> Iterator[None]:
    """A busy loop on ``cpu`` for the block's duration (at most two minutes)."""
    context = multiprocessing.get_context("spawn")
    competitor = context.Process(target=_competitor, args=(cpu, 120.0), daemon=True)
    competitor.start()
    try:
        time.sleep(1.0)
        yield
    finally:
        competitor.terminate()
        competitor.join(timeout=10)


@pytest.mark.slow
def test_layers_flags_busy_under_a_real_competing_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    db = tmp_path / "db.sqlite"
    argv = ["layers", "--alpha", "0.25", "--resolution", "128", "--block", "13"]
    argv += ["--trials", "1", "--threads", "1", "--cpus", str(cpu), "--no-limits"]
    argv += ["--db", str(db), "--models-dir", str(tmp_path / "models"), *FAST]
    with competing_load(cpu):
        rc = main([*argv, "--cooldown", "0.1s"])
    assert rc == 0, capsys.readouterr().err
    documents = _documents(db)
    assert len(documents) == 4  # standard, depthwise, pointwise, separable
    for doc in documents:
        guards = doc["guards"]
        assert isinstance(guards, dict)
        assert guards["kind"] == "local" and guards["cpus"] == [cpu]
        assert guards["own_cpu_source"] == "children"
        assert guards["cooldown"]["policy"] == "0.1 s"  # the wait is stored
    with Store.open(db) as store:
        config = store.get_run(1).config
        probes = store.probes_frame([1]).to_dict("records")
    assert config["cooldown"] == {"below_c": None, "fixed_s": 0.1, "max_wait_s": 300.0}
    assert_configs_round_trip(db)  # a layers run
    assert probes and all("busy" in str(p["flags"]).split(",") for p in probes), probes
    capsys.readouterr()
    assert main(["results", "--db", str(db), "--format", "csv"]) == 0
    assert "busy in 1 of 1 trials (other processes used" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main(["report", "--db", str(db), "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "Unreliable: 4 of 4 results" in summary and "busy in 1 of 1 trials" in summary


@pytest.mark.slow
def test_regress_pairs_record_guards_per_round_and_the_verdict_says_busy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    db = tmp_path / "db.sqlite"
    argv = ["regress", "--baseline", "current", "--candidate", "current"]
    argv += ["--alpha", "0.25", "--resolution", "96", "--threads", "1", "--quiet"]
    argv += ["--bursts", "4", "--burst-ms", "20", "--max-pairs", "3", "--budget", "60"]
    argv += ["--db", str(db), "--models-dir", str(tmp_path / "models"), "--seed", "3"]
    with competing_load(cpu):
        rc = main(argv)
    captured = capsys.readouterr()
    assert rc in (0, 3), captured.err
    with Store.open(db) as store:
        frame = store.measurements_frame([1, 2])
    assert len(frame) >= 6  # at least the first look's 3 pairs, on both sides
    assert_configs_round_trip(db)  # the two sides of a paired regress
    documents = _documents(db)
    by_pair: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for doc in documents:
        guards = doc["guards"]
        assert isinstance(guards, dict) and guards["own_cpu_source"] == "children"
        assert guards["before"] and guards["after"]
        pair = doc["pair"]
        assert isinstance(pair, dict)
        by_pair.setdefault((guards["wall_s"], guards["own_cpu_s"]), []).append(doc)
    assert all(len(docs) == 2 for docs in by_pair.values())  # one record per pair, both sides
    assert set(frame["guard_flags"].str.contains("busy")) == {True}, list(frame["guard_flags"])
    pairs = len(frame) // 2
    assert f"busy in {pairs} of {pairs} pairs" in captured.out
    assert "rounds flagged by the device guards in 1 cell(s) (busy" in captured.out
    # compare replays the same verdict from the store, with the same note.
    assert main(["compare", "1", "2", "--db", str(db)]) in (0, 3)
    assert f"busy in {pairs} of {pairs} pairs" in capsys.readouterr().out


@pytest.mark.slow
def test_layers_on_a_hot_phone_records_guards_and_cooldown_waits(
    tmp_path: Path, make_adb_phone: MakePhone, capsys: pytest.CaptureFixture[str]
) -> None:
    phone = dataclasses.replace(
        pixel_like(),
        thermal_zones=(("battery", 31_000), ("cpu-0-0", 34_000), ("cpu-1-0", 35_000)),
        thermal=ThermalModel(ambient_c=30.0, gain_c_per_cpu_s=25.0, tau_s=3.0, trip_c=42.0),
    )
    sim_phone = make_adb_phone(phone=phone)
    server = sim_phone.server
    url = (
        f"adb://{sim_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}"
    )
    db = tmp_path / "db.sqlite"
    argv = ["layers", "--device", url, "--alpha", "0.25", "--resolution", "128"]
    argv += ["--block", "13", "--trials", "1", "--threads", "1", "--cpus", "0x1"]
    argv += ["--no-limits", "--cooldown", "36C", "--cooldown-max", "60"]
    argv += ["--db", str(db), "--models-dir", str(tmp_path / "models"), *FAST]
    assert main(argv) == 0, capsys.readouterr().err
    documents = _documents(db)
    assert len(documents) == 4
    waits = []
    for doc in documents:
        guards = doc["guards"]
        assert isinstance(guards, dict) and guards["kind"] == "adb"
        assert guards["after"]["android"]["battery_level_pct"] == 87
        assert guards["before"]["thermal"]  # the zones were read through adb
        waits.append(guards["cooldown"])
    assert all(w["policy"] == "until below 36 °C, at most 60 s" for w in waits)
    assert all(w["reached"] and w["end_c"] < 36.0 for w in waits)
    assert sum(w["waited_s"] for w in waits[1:]) > 0.5  # later probes found the phone warm
    with Store.open(db) as store:
        probes = store.probes_frame([1]).to_dict("records")
    assert all(p["cooldown_s"] > 0 or p is probes[0] for p in probes)
    assert "battery 87 %" in str(probes[0]["device_state"])


def test_predict_sessions_guard_and_cool_down(tmp_path: Path) -> None:
    from devices.inventory import resolve_device
    from harness.predict.training import Target, open_session
    from results.guards import parse_cooldown

    target = Target(
        resolve_device("local", None), threads=1, cooldown=parse_cooldown("2s", max_wait_s=1.0)
    )
    with Store.open(tmp_path / "db.sqlite") as store:
        session = open_session(target, store)
        try:
            guard = session.measuring.guard
            assert guard is session.measuring.guard
            assert guard.cooldown is not None and guard.cooldown.fixed_s == 2.0
            started = guard.before()  # the pause is capped by --cooldown-max
            assert started.cooldown is not None and 0.9 <= started.cooldown.waited_s < 2.0
            record = guard.after(started, None, None)
            assert record["kind"] == "local" and record["own_cpu_source"] == "children"
        finally:
            session.close()


@pytest.mark.parametrize("verb", ["layers", "regress", "predict"])
def test_a_bad_cooldown_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    db = tmp_path / "db.sqlite"
    argv = [verb, "--db", str(db), "--models-dir", str(tmp_path / "m"), "--cooldown", "warm"]
    if verb == "regress":
        argv += ["--baseline", "current", "--candidate", "current"]
    assert main(argv) == 2
    assert "--cooldown 'warm': give a temperature such as 45C" in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "m").exists()
