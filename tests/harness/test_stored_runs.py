"""A results database is untrusted data: crafted run configurations never run a command on
resume, a regress side resumes with its own runtime, and a run is measured by one process.

Crafted databases point ``--resume`` at the real sshd fixture with live payloads (the same
payloads are shown to run when given to ssh itself in tests/devices/test_ssh_injection.py);
the canary file must not appear and nothing may be measured or changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from harness.cli import main
from harness.measure.plan import RunnerSettings
from harness.measure.runtimes import ensure_runtime
from results.config import RunConfig
from results.store import MIGRATIONS, READER_OPTIONAL, LeaseHeld, Store, config_key
from tests.fixtures.sshd import SshServer

FAST = ["--min-time", "0.05", "--max-time", "0.2", "--quiet"]
OLDEST = "onnxruntime==1.15.1"
NEWEST = "onnxruntime==1.31.1"


def _config(device: str, overrides: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "device": device,
        "threads": [1],
        "trials": 1,
        "cpus": None,
        "settings": asdict(RunnerSettings()),
        "timeout_s": None,
        "models_dir": "models",
        "models": [{"name": "m", "path": "/nonexistent/m.onnx", "sha256": "0" * 64, "spec": None}],
    }
    config.update(overrides or {}, **more)
    return config


def _crafted_db(path: Path, config: dict[str, Any]) -> int:
    with Store.open(path) as store:
        return store.create_run(
            device="crafted",
            device_kind="ssh",
            device_facts={},
            config=config,
            harness_version="0",
            runtime_version=None,
            label="crafted",
        )


def _payload_url(server: SshServer, canary: Path, option: str) -> str:
    return (
        f"ssh://{server.user}@{server.host}:{server.port}?identity_file="
        f"{quote(server.identity_file)}&known_hosts_file={quote(server.known_hosts_file)}"
        f"&ssh_option={quote(option.format(canary=canary), safe='')}"
    )


def _snapshot(db: Path) -> tuple[object, ...]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT id, status, finished_at, config FROM runs").fetchall()
        count = con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    con.close()
    return tuple(rows), count


def assert_configs_round_trip(db: Path) -> None:
    """Every run's stored configuration reads back as a ``RunConfig`` that writes the same
    document, and reads back again as the same value."""
    with Store.open(db) as store:
        runs = store.list_runs()
    assert runs
    for run in runs:
        config = RunConfig.from_json(run.id, run.config, run.device)
        assert config.to_json() == run.config
        assert RunConfig.from_json(run.id, config.to_json(), run.device) == config


@pytest.mark.parametrize(
    "option",
    [
        "ProxyCommand=touch {canary}",
        "KnownHostsCommand=/usr/bin/touch {canary}",
        "LocalCommand=touch {canary}",
        "StrictHostKeyChecking=no",
    ],
)
def test_crafted_device_is_refused_on_resume(
    sshd_server: SshServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    canary = tmp_path / "canary"
    db = tmp_path / "crafted.sqlite"
    run_id = _crafted_db(db, _config(_payload_url(sshd_server, canary, option)))
    before = _snapshot(db)
    connections = sshd_server.accepted_connections()
    rc = main(["run", "--db", str(db), "--resume", str(run_id), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"ssh option {option.split('=', maxsplit=1)[0]} is not allowed" in err
    assert not canary.exists()
    assert _snapshot(db) == before
    assert sshd_server.accepted_connections() == connections


@pytest.mark.parametrize(
    ("overrides", "what"),
    [
        ({"threads": ["1; touch x"]}, "thread counts"),
        ({"threads": [0]}, "thread counts"),
        ({"trials": 10**12}, "trial count"),
        ({"cpus": [-1]}, "cpus"),
        ({"timeout_s": float("nan")}, "timeout"),
        ({"settings": {"opt_level": "all; touch x"}}, "runner setting opt_level"),
        ({"settings": {"target_ci": "x"}}, "runner setting target_ci"),
        ({"settings": {"python": "sh"}}, "runner setting 'python'"),
        ({"device": "local\n--x"}, "device"),
        ({"models": [{"name": "m", "path": "p", "sha256": "zz"}]}, "model sha256"),
        (
            {"models": [{"name": "m", "path": "p", "sha256": "0" * 64, "shapes": ["x=1;id"]}]},
            "model shapes",
        ),
        ({"regress_role": "attacker", "runtime": "current"}, "regress role"),
        (
            {"models": [{"name": "m", "path": "p", "sha256": "0" * 64, "spec": {"alpha": 1}}]},
            "model spec",
        ),
        ({"cooldown": {"below_c": 40, "fixed_s": 5, "max_wait_s": 60}}, "cool-down setting"),
        ({"cooldown": {"fixed_s": 5, "max_wait_s": True}}, "cool-down setting"),
        (
            {"adaptive": {"target_ci": 2.0, "max_trials": 3, "budget": None}},
            "adaptive-trials setting",
        ),
        ({"adaptive": {"target_ci": 0.01, "max_trials": 0}}, "adaptive-trials setting"),
        ({"campaign": "a\nb"}, "campaign"),
        ({"layers": [1]}, "layers scope"),
        ({"regress_role": "baseline", "runtime": "current", "seed": "x"}, "regress setting seed"),
    ],
)
def test_crafted_plan_fields_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, Any], what: str
) -> None:
    db = tmp_path / "crafted.sqlite"
    run_id = _crafted_db(db, _config("local", overrides))
    before = _snapshot(db)
    rc = main(["run", "--db", str(db), "--resume", str(run_id), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"the stored {what} is not valid" in err
    assert _snapshot(db) == before


def test_stored_interpreter_is_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "canary"
    db = tmp_path / "crafted.sqlite"
    payload = f"sh -c 'touch {canary}'"
    base = _config("local", regress_role="baseline", runtime=payload)
    run_id = _crafted_db(db, base)
    _crafted_db(db, _config("local", regress_role="candidate", runtime=NEWEST))
    rc = main(["run", "--db", str(db), "--resume", str(run_id), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "a database never names a command to run" in err
    assert "`mnbench regress --device local --baseline 'sh -c" in err
    assert f"--candidate {NEWEST}" in err
    assert not canary.exists()


def test_paired_regress_side_is_not_resumed_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pairs.sqlite"
    base = _config("local", regress_role="baseline", runtime="current", design="pairs")
    run_id = _crafted_db(db, base)
    _crafted_db(db, _config("local", regress_role="candidate", runtime=NEWEST, design="pairs"))
    before = _snapshot(db)
    rc = main(["run", "--db", str(db), "--resume", str(run_id), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "cannot be resumed alone" in err
    assert f"--baseline current --candidate {NEWEST}" in err and "--design pairs" in err
    assert _snapshot(db) == before


# -- a regress side resumes with its own runtime --------------------------------------------


@pytest.fixture(scope="module")
def runtimes() -> tuple[Path, Path]:
    return ensure_runtime(OLDEST).python, ensure_runtime(NEWEST).python


def test_resumed_regress_side_uses_its_own_runtime(
    tmp_path: Path, runtimes: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    argv = ["regress", "--baseline", OLDEST, "--candidate", NEWEST, "--db", str(db)]
    argv += ["--models-dir", str(tmp_path / "models"), "--threads", "1", "--trials", "2"]
    argv += ["--alpha", "0.25", "--resolution", "96", "--seed", "1", "--design", "trials", *FAST]
    assert main(argv) in (0, 1, 3)
    capsys.readouterr()
    from harness.measure.regress import resume_hint

    with Store.open(db) as store:
        hint = resume_hint(store, 1, 2)
    assert_configs_round_trip(db)  # the two sides of a regress (design trials)
    assert "`mnbench run --resume 1` and `mnbench run --resume 2`" in hint
    assert "`mnbench compare 1 2`" in hint
    assert f"--baseline {OLDEST} --candidate {NEWEST} --alpha 0.25 --resolution 96" in hint
    with sqlite3.connect(db) as con:  # as if regress had stopped after trial 1
        con.execute("DELETE FROM measurements WHERE trial = 2")
        con.execute("UPDATE runs SET status = 'interrupted'")
    con.close()
    for run_id, version in ((1, "1.15.1"), (2, "1.31.1")):
        models = ["--models-dir", str(tmp_path / "models")]
        assert main(["run", "--db", str(db), "--resume", str(run_id), *models, "--quiet"]) == 0
        capsys.readouterr()
        with Store.open(db) as store:
            frame = store.measurements_frame([run_id])
            run = store.get_run(run_id)
        assert sorted(frame["trial"]) == [1, 2]
        documents = [json.loads(d) for d in _documents(db, run_id)]
        assert {d["runtime"]["version"] for d in documents} == {version}
        assert run.status == "complete" and run.label is not None and version in run.label


def _documents(db: Path, run_id: int) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT document FROM measurements WHERE run_id = ?", (run_id,))
        documents = [str(r[0]) for r in rows]
    con.close()
    return documents


# -- the measuring lease --------------------------------------------------------------------

HOLDER = """
import sys, time
from results.store import Store
with Store.open(sys.argv[1]) as store, store.lease(int(sys.argv[2]), "mnbench run", 600):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_measurer_is_refused_and_a_dead_one_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    assert main(["run", "--db", str(db), "--models-dir", str(tmp_path / "m"), "--alpha", "0.25",
                 "--resolution", "96", "--threads", "1", "--trials", "2", *FAST]) == 0  # fmt: skip
    capsys.readouterr()
    assert_configs_round_trip(db)  # a run
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM measurements WHERE trial = 2")
        con.execute("UPDATE runs SET status = 'interrupted'")
    con.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), "1"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _snapshot(db)
        rc = main(["run", "--db", str(db), "--resume", "1", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert f"run 1 is being measured by mnbench run (pid {holder.pid} on " in err
        assert _snapshot(db) == before
    finally:
        holder.kill()
        holder.communicate()
    # The holder died without releasing: its lease is stale and is taken over.
    models = ["--models-dir", str(tmp_path / "m")]
    assert main(["run", "--db", str(db), "--resume", "1", *models, "--quiet"]) == 0
    with Store.open(db) as store:
        frame = store.measurements_frame([1])
        assert store.lease_holder(1) is None
    assert sorted(frame["trial"]) == [1, 2]


def test_lease_with_an_old_heartbeat_elsewhere_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    run_id = _crafted_db(db, _config("local"))
    with Store.open(db) as store:
        with store.lease(run_id, "first", 600):
            with sqlite3.connect(db) as con:
                con.execute(
                    "UPDATE run_leases SET host = 'elsewhere', pid = 1, heartbeat_unix_s = 0"
                )
            con.close()
            with Store.open(db) as other, other.lease(run_id, "second", 600):
                assert other.lease_holder(run_id)["holder"] == "second"  # type: ignore[index]
                # The first measurer notices it lost the lease before writing anything.
                with pytest.raises(LeaseHeld, match="lost its lease on run"):
                    store.heartbeat(run_id)
        with sqlite3.connect(db) as con:
            con.execute(
                "INSERT INTO run_leases VALUES (?, 't', 'live', 1, 'elsewhere', '', ?, 600)",
                (run_id, 1e12),
            )
        con.close()
        with pytest.raises(LeaseHeld, match="pid 1 on elsewhere"), store.lease(run_id, "x", 600):
            pass


def test_version_1_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    with Store.open(db, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version == 1
        run_id = old.create_run(
            device="local",
            device_kind="local",
            device_facts={"nproc": 2},
            config=_config("local"),
            harness_version="0.1",
            runtime_version="1.31.1",
            label="kept",
        )
        old.add_measurement(
            run_id=run_id,
            model_sha256="0" * 64,
            config={"threads": 1, "cpus": None},
            trial=1,
            status="failed",
            reason="kept too",
            document=None,
        )
    with Store.open(db) as store:
        assert store.schema_version == len(MIGRATIONS) >= 2
        run = store.get_run(run_id)
        assert run.label == "kept" and run.device_facts == {"nproc": 2}
        assert store.completed_keys(run_id) == {
            ("0" * 64, config_key({"threads": 1, "cpus": None}), 1)
        }
        with store.lease(run_id, "mnbench run", 60):
            assert store.lease_holder(run_id) is not None


def test_file_without_the_lease_table_is_read_without_upgrading(tmp_path: Path) -> None:
    db = tmp_path / "before-leases.sqlite"
    lease_step = MIGRATIONS.index(READER_OPTIONAL[0])
    with Store.open(db, migrations=MIGRATIONS[:lease_step]) as old:
        run_id = _crafted_db_in(old)
    before = db.read_bytes()
    with Store.open(db, readonly=True) as reader:  # read verbs read it as it is
        assert reader.schema_version == lease_step
        assert reader.get_run(run_id).label == "crafted"
        assert [r.id for r in reader.list_runs()] == [run_id]
    assert db.read_bytes() == before


def _crafted_db_in(store: Store) -> int:
    return store.create_run(
        device="local",
        device_kind="local",
        device_facts={},
        config=_config("local"),
        harness_version="0",
        runtime_version=None,
        label="crafted",
    )


@pytest.mark.parametrize(
    "device",
    [
        "adb://-cexec(bytes.fromhex('00'))?adb={python}",
        "adb://phone?adb=/bin/sh&server=127.0.0.1:5037",
        "ssh://pi@board?python=sh%20-c%20'touch%20{canary}'",
        "adb://phone?perf_test=/tmp/tool&libs=/tmp/a.so",
    ],
)
def test_stored_url_naming_a_program_is_not_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    canary = tmp_path / "canary"
    db = tmp_path / "crafted.sqlite"
    run_id = _crafted_db(db, _config(device.format(python=sys.executable, canary=canary)))
    before = _snapshot(db)
    rc = main(["run", "--db", str(db), "--resume", str(run_id), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "stored device URL names a program" in err and "--device URL" in err
    assert not canary.exists() and _snapshot(db) == before


def test_a_device_given_on_resume_must_be_the_runs_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "crafted.sqlite"
    run_id = _crafted_db(db, _config("ssh://pi@board:2222?python=python3"))
    for other, why in (
        ("ssh://pi@elsewhere:2222?python=python3", "measured on ssh://pi@board:2222, not on"),
        ("adb://phone?python=python3", "was measured on a ssh device"),
    ):
        rc = main(["run", "--db", str(db), "--resume", str(run_id), "--device", other])
        err = capsys.readouterr().err
        assert rc == 2 and why in err, err


def test_two_resumes_at_once_measure_each_item_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    argv = ["run", "--db", str(db), "--models-dir", str(tmp_path / "m"), "--alpha", "0.25"]
    # Each measurement takes a second, so a resume holds the lease long after the other
    # process has started.
    argv += ["--resolution", "96", "--threads", "1", "--trials", "3", "--min-time", "1"]
    argv += ["--max-time", "1.5", "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM measurements WHERE trial > 1")
        con.execute("UPDATE runs SET status = 'interrupted'")
        kept = {r[0] for r in con.execute("SELECT id FROM measurements")}
    con.close()
    resume = [sys.executable, "-m", "harness", "run", "--db", str(db), "--resume", "1"]
    resume += ["--models-dir", str(tmp_path / "m")]
    procs = [
        subprocess.Popen([*resume, "--quiet"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    (refusal,) = [err for rc, err in results if rc == 2]
    assert "run 1 is being measured by mnbench run --resume (pid " in refusal
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT id, trial, created_at FROM measurements").fetchall()
    con.close()
    assert sorted(trial for _, trial, _ in rows) == [1, 2, 3]
    assert kept <= {row[0] for row in rows}


# -- one typed configuration for every verb -------------------------------------------------


def _verb_extras() -> dict[str, dict[str, object]]:
    """Each verb's own keys, as the verb gives them to ``MeasurementSession.create_run``."""
    from results.config import AdaptivePlan

    return {
        "run": {"adaptive": AdaptivePlan(0.02, 8, 40).to_config()},
        "run-fixed": {"adaptive": None},
        "layers": {
            "layers": {"alpha": 0.25, "resolution": 128, "kernels": [3, 5], "blocks": [1, 13]}
        },
        "regress": {
            "runtime": NEWEST,
            "regress_role": "candidate",
            "design": "pairs",
            "pairing": "0123456789abcdef",
            "max_pairs": 30,
            "min_pairs": 3,
            "alpha": 0.05,
            "budget_s": 120.0,
            "bursts_per_side": 16,
            "burst_target_s": 0.075,
            "seed": None,
        },
        "regress-trials": {"runtime": "current", "regress_role": "baseline", "design": "trials"},
        "predict": {"predict": {"round": 1, "seed": 0, "probes": 110}},
        "lab": {"campaign": "nightly"},
        "lab-unnamed": {"campaign": None},
    }


@pytest.mark.parametrize("verb", sorted(_verb_extras()))
def test_every_verbs_configuration_round_trips(tmp_path: Path, verb: str) -> None:
    from devices.device import DeviceConfig
    from harness.measure.plan import ModelEntry
    from harness.measure.session import MeasurementSession, Selection
    from mobilenet.spec import ModelSpec
    from results.guards import CooldownPolicy

    models = [
        ModelEntry("a", tmp_path / "a.onnx", "a" * 64, ModelSpec(0.25, 96)),
        ModelEntry("b", tmp_path / "b.onnx", "b" * 64, None, ("input=1x3x96x96",)),
    ]
    settings = RunnerSettings(target_ci=0.02, max_time_s=2.0, fixed=None, batch=4)
    db = tmp_path / "db.sqlite"
    with (
        Store.open(db) as store,
        MeasurementSession(
            DeviceConfig("local"),
            settings,
            store=store,
            timeout_s=90.0,
            cooldown=CooldownPolicy(below_c=45.0, max_wait_s=60.0),
        ) as session,
    ):
        run_id = session.create_run(
            models,
            Selection([0, 1], [1, 2]),
            3,
            device_arg="local",
            models_dir=tmp_path,
            label=verb,
            holder=None,
            extra_config=_verb_extras()[verb],
        )
        stored = store.get_run(run_id).config
    assert_configs_round_trip(db)
    config = RunConfig.from_json(run_id, stored, "local")
    assert config.kind == verb.split("-", maxsplit=1)[0]
    assert config.settings == settings and config.models == tuple(models)
    assert config.cooldown == CooldownPolicy(below_c=45.0, max_wait_s=60.0)
    assert (config.threads, config.cpus, config.trials, config.timeout_s) == (
        (1, 2),
        (0, 1),
        3,
        90.0,
    )
    assert stored == {**stored, **_verb_extras()[verb]}  # the verb's keys stored as given


def test_an_older_configuration_reads_with_the_defaults(tmp_path: Path) -> None:
    """Keys older runs did not store (the models directory, shapes, a setting) read as their
    defaults; keys this version does not know are kept."""
    older = _config("local", settings={"target_ci": 0.05}, surprise=[1])
    del older["models_dir"]
    config = RunConfig.from_json(7, older, "local")
    assert config.settings == RunnerSettings(target_ci=0.05) and config.models_dir is None
    assert config.models[0].shapes == () and config.kind == "plain"
    assert config.to_json()["surprise"] == [1] and "models_dir" not in config.to_json()
