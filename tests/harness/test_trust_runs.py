"""Guards, cool-down and adaptive trials end to end, with real parts.

- A simulated phone with a thermal model (tests/adbsim/thermal.py), through the real adb
  client: the trials' own CPU time heats it until its governor caps the frequency; the run
  flags the throttled trials, ``--cooldown`` waits before each trial until it is cool, the
  waits are stored, and the report says so.
- This machine with a real competing CPU load started by the test (a bounded busy loop
  pinned to the measured core): the cell is flagged busy.
- ``--target-ci`` adds fresh-process trials until the cross-trial CI fits, within
  ``--max-trials`` and ``--budget``; a cell that never gets there is flagged.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from results.store import Store
from tests.adbsim import ThermalModel, pixel_like
from tests.fixtures.adb import MakePhone

FAST = ["--min-time", "0.05", "--max-time", "0.5", "--quiet", "--threads", "1"]
CELL = ["--alpha", "0.25", "--resolution", "128"]


def _documents(db: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select document from measurements order by id").fetchall()
    finally:
        con.close()
    return [json.loads(text) for (text,) in rows if text]


@pytest.mark.slow
def test_phone_throttling_flagged_and_cooldown_waits(
    tmp_path: Path, make_adb_phone: MakePhone, capsys: pytest.CaptureFixture[str]
) -> None:
    cool_zones = (
        ("battery", 31_000),
        ("skin-therm", 32_000),
        ("cpu-0-0", 34_000),
        ("cpu-1-0", 35_000),
    )
    phone = dataclasses.replace(
        pixel_like(),
        thermal_zones=cool_zones,
        thermal=ThermalModel(ambient_c=30.0, gain_c_per_cpu_s=25.0, tau_s=3.0, trip_c=42.0),
    )
    sim_phone = make_adb_phone(phone=phone)
    server = sim_phone.server
    url = (
        f"adb://{sim_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}"
    )
    db = tmp_path / "db.sqlite"
    args = ["run", "--device", url, *CELL, "--trials", "3", "--db", str(db)]
    args += ["--models-dir", str(tmp_path / "models"), "--cpus", "0x1", *FAST]
    args += ["--cooldown", "36C", "--cooldown-max", "90"]
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "note: governor schedutil (not pinned)" in err and "To pin the frequencies" in err
    assert "adb shell su -c 'echo performance > /sys/devices/system/cpu/cpu0/cpufreq" in err
    documents = _documents(db)
    assert len(documents) == 3
    waits = [doc["guards"]["cooldown"] for doc in documents]  # type: ignore[index]
    assert all(w["policy"] == "until below 36 °C, at most 90 s" for w in waits)
    assert all(w["reached"] and w["end_c"] < 36.0 for w in waits)
    assert sum(w["waited_s"] for w in waits[1:]) > 1.0  # the later trials found it hot
    after = documents[0]["guards"]["after"]  # type: ignore[index]
    assert after["android"]["battery_level_pct"] == 87 and after["android"]["charging"] is True
    with Store.open(db) as store:
        (row,) = store.results_frame([1]).to_dict("records")
    flags = str(row["flags"]).split(",")
    assert "throttled" in flags, row["unreliable"]
    assert "max frequency capped on cpu 0" in str(row["unreliable"])
    assert row["cooldown_s"] > 1.0
    assert "screen on" in str(row["device_state"]) and "battery 87 %" in str(row["device_state"])
    out = tmp_path / "report"
    assert main(["report", "--db", str(db), "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "throttled in" in summary and "of 3 trials" in summary
    assert "cool-down waits" in summary
    html = (out / "report.html").read_text()
    assert 'id="trust"' in html and "throttled in" in html and "To pin the frequencies" in html


def _competitor(cpu: int, seconds: float) -> None:
    os.sched_setaffinity(0, {cpu})
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.slow
def test_busy_machine_flagged_with_a_real_competing_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    context = multiprocessing.get_context("spawn")
    competitor = context.Process(target=_competitor, args=(cpu, 120.0), daemon=True)
    db = tmp_path / "db.sqlite"
    competitor.start()
    try:
        time.sleep(1.0)
        rc = main(
            [
                "run",
                *CELL,
                "--trials",
                "2",
                "--cpus",
                str(cpu),
                "--db",
                str(db),
                "--models-dir",
                str(tmp_path / "models"),
                *FAST,
            ]
        )
    finally:
        competitor.terminate()
        competitor.join(timeout=10)
    assert rc == 0, capsys.readouterr().err
    documents = _documents(db)
    guards = [doc["guards"] for doc in documents]
    assert all(g["own_cpu_source"] == "children" and g["cpus"] == [cpu] for g in guards)  # type: ignore[index]
    with Store.open(db) as store:
        (row,) = store.results_frame([1]).to_dict("records")
    assert "busy" in str(row["flags"]).split(","), row["unreliable"]
    assert "busy in 2 of 2 trials (other processes used" in str(row["unreliable"])
    assert row["other_load"] > 0.3


@pytest.mark.slow
def test_adaptive_trials_until_target_within_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    base = ["run", *CELL, "--db", str(db), "--models-dir", str(tmp_path / "models"), *FAST]
    # An unreachable target: trials are added up to --max-trials, and the cell says so.
    assert main([*base, "--trials", "3", "--target-ci", "0.001", "--max-trials", "4"]) == 0
    # A loose target: the base plan already meets it.
    assert main([*base, "--trials", "3", "--target-ci", "95"]) == 0
    # The budget stops it first.
    assert main([*base, "--trials", "3", "--target-ci", "0.001", "--budget", "5"]) == 0
    capsys.readouterr()
    with Store.open(db) as store:
        rows = {int(r["run_id"]): r for r in store.results_frame().to_dict("records")}
    assert rows[1]["trials"] == 4 and "target_missed" in str(rows[1]["flags"])
    assert "after 4 trials, target ±0.0%" in str(rows[1]["unreliable"])
    assert rows[2]["trials"] == 3 and "target_missed" not in str(rows[2]["flags"])
    assert rows[3]["trials"] == 5
    trials = sorted(d.get("trial_target_ci") for d in _documents(db))  # type: ignore[type-var]
    assert set(trials) == {0.00001, 0.95}
    # Resuming a finished adaptive run measures nothing more.
    models = ["--models-dir", str(tmp_path / "models")]
    assert main(["run", "--resume", "1", "--db", str(db), *models, "--quiet"]) == 0
    assert "0 measured" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "5"], "--budget applies to adaptive trials only; give --target-ci"),
        (["--max-trials", "5"], "--max-trials applies to adaptive trials only"),
        (["--target-ci", "5", "--budget", "2"], "--budget 2 is below the 3 trials"),
        (["--target-ci", "5", "--max-trials", "2"], "--max-trials 2 is below --trials 3"),
        (["--cooldown", "hot"], "--cooldown 'hot': give a temperature such as 45C"),
    ],
)
def test_trust_flags_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    db = tmp_path / "db.sqlite"
    args = ["run", *CELL, "--db", str(db), "--models-dir", str(tmp_path / "m"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "m").exists()
