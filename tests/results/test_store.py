"""results.store on real SQLite files: schema, migrations, refusal, concurrency, resume, frames."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cli import exit_code_of
from results.backend import SQLiteDatabase
from results.errors import ResultsError
from results.stats import summarize
from results.store import (
    MIGRATIONS,
    RESULT_COLUMNS,
    RESULT_EXTRA_COLUMNS,
    SCHEMA_VERSION,
    Migration,
    ModelRecord,
    Store,
    config_key,
    default_db_path,
)
from results.trials import cross_trial_interval

REPO = Path(__file__).resolve().parents[2]


def runner_document(
    samples_ms: Sequence[float],
    *,
    version: str = "1.31.1",
    session_create_ms: float = 40.0,
    first_inference_ms: float = 12.0,
    peak_rss_end_bytes: int | None = 80 * 2**20,
    peak_rss_after_load_bytes: int | None = 60 * 2**20,
    reported_ms: dict[str, float] | None = None,
    min_samples: int = 10,
) -> dict[str, Any]:
    """A runner document (schema mnbench.runner/1) with the given samples."""
    return {
        "schema": "mnbench.runner/1",
        "status": "ok",
        "error": None,
        "model": {"path": "/tmp/models/m.onnx", "file_bytes": 1234, "sha256": "x"},
        "runtime": {
            "name": "onnxruntime",
            "version": version,
            "available_providers": ["CPUExecutionProvider"],
            "providers": ["CPUExecutionProvider"],
            "session_options": {
                "intra_op_threads": 1,
                "inter_op_threads": 1,
                "graph_optimization_level": "ORT_ENABLE_ALL",
                "execution_mode": "ORT_SEQUENTIAL",
                "spin": False,
            },
        },
        "host_before": None,
        "host_after": None,
        "timings": {
            "session_create_ms": session_create_ms,
            "first_inference_ms": first_inference_ms,
            "warmup_iterations": 5,
            "measure_s": 1.0,
        },
        "samples_ms": list(samples_ms),
        "reported_ms": reported_ms,
        "iterations": len(samples_ms) or 100,
        "stop_reason": "ci_target",
        "settings": {
            "target_ci": 0.01,
            "min_samples": min_samples,
            "max_samples": 1000,
            "min_time_s": 0.5,
            "max_time_s": 5.0,
            "warmup_max": 50,
            "seed": 0,
            "cpus": None,
        },
        "memory": {
            "peak_rss_after_load_bytes": peak_rss_after_load_bytes,
            "peak_rss_end_bytes": peak_rss_end_bytes,
            "source": "VmHWM",
        },
        "inputs": [],
        "profile": None,
    }


MODEL = ModelRecord(
    sha256="a" * 64,
    name="mobilenet_v1_0.75_160",
    alpha=0.75,
    resolution=160,
    variant="separable",
    kernel=3,
    precision="fp32",
    macs=162_000_000,
    params=2_600_000,
    weight_bytes=10_400_000,
    peak_activation_bytes=1_200_000,
    file_bytes=10_500_000,
    cost={"layers": []},
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


def new_run(store: Store, label: str | None = None, runtime: str | None = "1.31.1") -> int:
    return store.create_run(
        device="local",
        device_kind="local",
        device_facts={"cpu_model": "Test CPU", "logical_cores": 8},
        config={"plan": [{"model": "m", "threads": 1}], "trials": 3},
        harness_version="0.1.0",
        runtime_version=runtime,
        label=label,
    )


# -- opening, schema, refusal ------------------------------------------------------------


def test_new_database_is_wal_and_versioned(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()[0]
        assert int(version) == SCHEMA_VERSION
        tables = {
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert {"meta", "runs", "models", "measurements"} <= tables
    finally:
        connection.close()


def test_default_db_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MNBENCH_DB", raising=False)
    assert default_db_path() == Path("mnbench.sqlite")
    monkeypatch.setenv("MNBENCH_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"


def test_open_without_create_refuses_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(ResultsError, match="no results database at"):
        Store.open(missing, create=False)
    assert not missing.exists()


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), b"name,latency\nm,1.0\n", b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["random-bytes", "text-file", "sqlite-header-garbage"],
)
def test_not_a_database_is_refused_and_kept(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mnbench.sqlite"
    path.write_bytes(content)
    with pytest.raises(ResultsError) as caught:
        Store.open(path)
    message = caught.value.message
    assert message.startswith(f"{path} is not an mnbench database (")
    assert message.endswith("pass another --db or move it away")
    assert "\n" not in message and exit_code_of(caught.value) == 2
    assert path.read_bytes() == content
    assert not (tmp_path / "mnbench.sqlite-wal").exists()


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    with pytest.raises(ResultsError, match="without an mnbench meta table"):
        Store.open(path)


def _add_note_column(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE runs SET label = COALESCE(label, 'migrated')")


def test_migration_upgrades_and_newer_version_is_refused(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        run_id = new_run(store)
    newer: list[Migration] = [
        *MIGRATIONS,
        "ALTER TABLE runs ADD COLUMN note TEXT; CREATE INDEX runs_by_note ON runs (note);",
        _add_note_column,
    ]
    with Store.open(db_path, migrations=newer) as store:
        assert store.schema_version == SCHEMA_VERSION + 2
        assert store.get_run(run_id).label == "migrated"  # the callable step ran on old data
    connection = sqlite3.connect(db_path)
    try:
        columns = {r[1] for r in connection.execute("PRAGMA table_info(runs)")}
        assert "note" in columns
    finally:
        connection.close()
    newer_message = (
        rf"newer mnbench \(schema version {SCHEMA_VERSION + 2}, "
        rf"this one reads up to {SCHEMA_VERSION}\)"
    )
    with pytest.raises(ResultsError, match=newer_message):
        Store.open(db_path)
    # Reopening with the long list again is a no-op.
    with Store.open(db_path, migrations=newer) as store:
        assert store.schema_version == SCHEMA_VERSION + 2


def test_failed_migration_rolls_back(db_path: Path) -> None:
    with Store.open(db_path) as store:
        new_run(store)
    broken: list[Migration] = [
        *MIGRATIONS,
        "ALTER TABLE runs ADD COLUMN note TEXT;",
        "ALTER TABLE no_such_table ADD COLUMN x;",
    ]
    with pytest.raises(ResultsError, match="sqlite"):
        Store.open(db_path, migrations=broken)
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert len(store.list_runs()) == 1


# -- runs ------------------------------------------------------------------------------------


def test_runs_and_resolve(store: Store) -> None:
    with pytest.raises(ResultsError, match="holds no runs yet; measure with `mnbench run`"):
        store.resolve_run_id("latest")
    first = new_run(store, label="baseline", runtime=None)
    second = new_run(store)
    assert store.resolve_run_id(None) == store.resolve_run_id("latest") == second
    assert store.resolve_run_id(first) == store.resolve_run_id(str(first)) == first
    assert store.resolve_run_id("baseline") == first
    with pytest.raises(ResultsError, match=r"no run 99 in .*lists the runs"):
        store.resolve_run_id("99")
    with pytest.raises(ResultsError, match="no run 'nope'"):
        store.resolve_run_id("nope")

    record = store.get_run(first)
    # Stored as running, but no live process holds its lease: nobody is measuring it.
    assert (record.status, record.finished_at, record.runtime_version) == (
        "interrupted",
        None,
        None,
    )
    assert record.device_facts["cpu_model"] == "Test CPU"
    assert record.config["trials"] == 3
    store.set_runtime_version(first, "1.30.0")
    store.set_run_status(first, "interrupted")
    record = store.get_run(first)
    assert record.runtime_version == "1.30.0" and record.status == "interrupted"
    assert record.finished_at is not None
    store.set_run_status(first, "running")  # resumed
    assert store.get_run(first).finished_at is None
    assert [r.id for r in store.list_runs()] == [first, second]
    with pytest.raises(ResultsError, match="no run 42"):
        store.set_run_status(42, "complete")

    frame = store.runs_frame()
    assert list(frame["run_id"]) == [first, second]
    assert frame.loc[0, "facts.cpu_model"] == "Test CPU"
    assert frame["config"].iloc[1]["trials"] == 3


# -- measurements and resume -------------------------------------------------------------


def test_config_key_is_canonical() -> None:
    assert config_key({"threads": 2, "cpus": None}) == config_key({"cpus": None, "threads": 2})
    assert config_key({"threads": 2, "cpus": [0, 1]}) == '{"cpus":[0,1],"threads":2}'
    assert config_key({"threads": 2}) != config_key({"threads": 4})


def test_completed_keys_for_resume(store: Store) -> None:
    run_id = new_run(store)
    other_run = new_run(store)
    store.upsert_model(MODEL)
    one = {"threads": 1, "cpus": None}
    two = {"cpus": None, "threads": 2}
    store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config=one,
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([1.0, 2.0]),
    )
    store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config=two,
        trial=0,
        status="failed",
        reason="runner crashed",
        document=None,
    )
    store.add_measurement(
        run_id=other_run,
        model_sha256=MODEL.sha256,
        config=one,
        trial=1,
        status="ok",
        reason=None,
        document=runner_document([1.0]),
    )
    assert store.completed_keys(run_id) == {
        (MODEL.sha256, config_key(one), 0),
        (MODEL.sha256, config_key(two), 0),
    }
    assert store.completed_keys(run_id, include_failed=False) == {
        (MODEL.sha256, config_key(one), 0)
    }
    # A resumed sweep retries the failed trial: the row is replaced, not duplicated.
    retried = store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config={"threads": 2, "cpus": None},
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([3.0]),
    )
    assert store.completed_keys(run_id, include_failed=False) == {
        (MODEL.sha256, config_key(one), 0),
        (MODEL.sha256, config_key(two), 0),
    }
    frame = store.measurements_frame([run_id])
    assert len(frame) == 2
    row = frame[frame["id"] == retried].iloc[0]
    assert (row["status"], row["samples_ms"], row["threads"]) == ("ok", [3.0], 2)
    with pytest.raises(ResultsError, match="no run 77"):
        store.add_measurement(
            run_id=77,
            model_sha256=MODEL.sha256,
            config=one,
            trial=0,
            status="ok",
            reason=None,
            document=None,
        )


def test_each_measurement_is_committed_on_its_own(db_path: Path) -> None:
    with Store.open(db_path) as store:
        run_id = new_run(store)
        store.add_measurement(
            run_id=run_id,
            model_sha256="b" * 64,
            config={"threads": 1},
            trial=0,
            status="ok",
            reason=None,
            document=runner_document([1.0]),
        )
        # Another connection sees it while this store is still open.
        reader = sqlite3.connect(db_path)
        try:
            count = reader.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        finally:
            reader.close()
        assert count == 1


def test_upsert_model_refreshes(store: Store) -> None:
    store.upsert_model(ModelRecord(sha256="c" * 64, name="foreign"))
    store.upsert_model(ModelRecord(sha256="c" * 64, name="foreign", macs=5, file_bytes=9))
    run_id = new_run(store)
    store.add_measurement(
        run_id=run_id,
        model_sha256="c" * 64,
        config={"threads": 1},
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([1.0]),
    )
    row = store.results_frame([run_id]).iloc[0]
    assert row["name"] == "foreign" and row["macs"] == 5 and row["file_bytes"] == 9
    assert row["alpha"] != row["alpha"]  # NaN for a foreign model


# -- concurrency -------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from results.store import Store

    db, run_id, worker, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    samples = [1.0 + i / 1000 for i in range(500)]
    while run_id == 0 and not go.exists():  # racing to create the database itself
        time.sleep(0.0002)
    with Store.open(Path(db)) as store:
        Path(f"{go}.ready{worker}").touch()
        while not go.exists():
            time.sleep(0.0002)
        if run_id == 0:
            run_id = store.create_run(
                device=f"worker{worker}", device_kind="local", device_facts={}, config={},
                harness_version="0", runtime_version=None, label=None)
        for trial in range(200):
            store.add_measurement(
                run_id=run_id, model_sha256="d" * 64, config={"threads": 1, "worker": worker},
                trial=trial, status="ok", reason=None,
                document={"samples_ms": samples, "worker": worker, "trial": trial},
            )
    """
)


def _run_writers(db_path: Path, run_id: int, go: Path) -> None:
    """Start two writer processes, release them together, wait for both to succeed."""
    python_path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db_path), str(run_id), str(worker), str(go)],
            env={**os.environ, "PYTHONPATH": python_path},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for worker in (1, 2)
    ]
    try:
        # Release both writers together, once each has the database open (or, when they
        # must create it, once both are running).
        while run_id != 0 and not all(Path(f"{go}.ready{w}").exists() for w in (1, 2)):
            if any(writer.poll() is not None for writer in writers):
                break
            time.sleep(0.001)
        go.touch()
        for writer in writers:
            _, stderr = writer.communicate(timeout=120)
            assert writer.returncode == 0, stderr.decode()
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate()


def test_opening_waits_for_another_writer_before_switching_a_new_file_to_wal(
    db_path: Path,
) -> None:
    """Two processes creating one file: the second one's write transaction (it found the
    file empty and queued on the lock to migrate it) still holds the rollback-mode file when
    the first switches it to WAL. SQLite refuses that switch at once, without its busy
    handler (it would otherwise risk a deadlock), so the opener must wait and retry."""
    import threading

    sqlite3.connect(db_path).execute("CREATE TABLE other_table (x)").connection.commit()
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the reserved lock, as a migrating opener does
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    database = SQLiteDatabase.connect(db_path, create=True, readonly=False)
    try:
        database.after_migrations()
        assert database.one("PRAGMA journal_mode") == ("wal",)
    finally:
        release.join()
        database.close()
        other.close()


def test_two_processes_create_the_database_at_once(db_path: Path, tmp_path: Path) -> None:
    _run_writers(db_path, 0, tmp_path / "go")
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        runs = store.list_runs()
        assert sorted(run.device for run in runs) == ["worker1", "worker2"]
        assert [run.measurements for run in runs] == [200, 200]


def test_two_processes_write_at_once(db_path: Path, tmp_path: Path) -> None:
    with Store.open(db_path) as store:
        run_id = new_run(store)
    _run_writers(db_path, run_id, tmp_path / "go")
    with Store.open(db_path) as store:
        assert len(store.completed_keys(run_id)) == 400
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_worker = dict(
            connection.execute(
                "SELECT json_extract(config_key, '$.worker'), COUNT(*) FROM measurements GROUP BY 1"
            ).fetchall()
        )
        interleaved = connection.execute(
            "SELECT COUNT(*) FROM (SELECT json_extract(config_key, '$.worker') AS w, "
            "LAG(json_extract(config_key, '$.worker')) OVER (ORDER BY id) AS previous "
            "FROM measurements) WHERE w != previous"
        ).fetchone()[0]
    finally:
        connection.close()
    assert per_worker == {1: 200, 2: 200}
    # Not a test of timing, only a record that the writers did overlap when they could.
    print(f"worker switches between consecutive rows: {interleaved}")


# -- frames ------------------------------------------------------------------------------


def test_results_frame_pools_ok_trials(store: Store) -> None:
    rng = np.random.default_rng(0)
    run_id = new_run(store, label="nightly")
    store.upsert_model(MODEL)
    config = {"threads": 2, "cpus": [0, 1]}
    trials = [list(5.0 + rng.random(30)), list(5.5 + rng.random(40)), list(4.8 + rng.random(20))]
    rss = [70 * 2**20, 90 * 2**20, 80 * 2**20]
    load = [30.0, 50.0, 40.0]
    for trial, samples in enumerate(trials):
        store.add_measurement(
            run_id=run_id,
            model_sha256=MODEL.sha256,
            config=config,
            trial=trial,
            status="ok",
            reason=None,
            document=runner_document(
                samples,
                peak_rss_end_bytes=rss[trial],
                session_create_ms=load[trial],
                first_inference_ms=10.0 + trial,
                min_samples=25,
            ),
        )
    store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config=config,
        trial=3,
        status="failed",
        reason="timeout after 60 s",
        document=None,
    )
    frame = store.results_frame([run_id])
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert list(frame.columns) == [*RESULT_COLUMNS, *RESULT_EXTRA_COLUMNS]
    assert len(frame) == 1
    row = frame.iloc[0]
    pooled = [v for samples in trials for v in samples]
    expected = summarize(pooled, requested_samples=75)
    assert row["p50_ms"] == pytest.approx(np.median(pooled))
    assert row["p90_ms"] == pytest.approx(np.percentile(pooled, 90))
    assert row["p99_ms"] == pytest.approx(np.percentile(pooled, 99))
    assert row["std_ms"] == pytest.approx(np.std(pooled, ddof=1))
    assert (row["within_ci_low_ms"], row["within_ci_high_ms"]) == (
        expected.ci_low_ms,
        expected.ci_high_ms,
    )
    across = cross_trial_interval([float(np.median(t)) for t in trials])
    assert (row["ci_low_ms"], row["ci_high_ms"]) == (across.ci_low_ms, across.ci_high_ms)
    assert row["spread"] == pytest.approx(across.spread)
    assert row["ci_reason"] == ""
    assert row["samples"] == 90
    assert (row["trials"], row["failed_trials"], row["status"]) == (4, 1, "partial")
    assert row["reasons"] == "timeout after 60 s"
    assert row["peak_rss_bytes"] == 90 * 2**20
    assert row["peak_rss_load_bytes"] == 60 * 2**20
    assert row["load_ms"] == 40.0 and row["first_ms"] == 11.0
    assert row["trial_medians_ms"] == pytest.approx([float(np.median(t)) for t in trials])
    assert (row["name"], row["alpha"], row["resolution"], row["threads"], row["cpus"]) == (
        "mobilenet_v1_0.75_160",
        0.75,
        160,
        2,
        "0,1",
    )
    assert (row["macs"], row["device"], row["label"], row["runtime_version"]) == (
        162_000_000,
        "local",
        "nightly",
        "1.31.1",
    )
    assert row["flags"] == ""


def test_results_frame_status_and_reported_only(store: Store) -> None:
    run_id = new_run(store, runtime=None)
    other = new_run(store)
    # No model row: the name comes from the document's model path.
    failed_sha, reported_sha = "e" * 64, "f" * 64
    for trial in range(2):
        store.add_measurement(
            run_id=run_id,
            model_sha256=failed_sha,
            config={"threads": 1},
            trial=trial,
            status="failed",
            reason="OOM",
            document=None,
        )
    for trial, (p50, p90) in enumerate([(10.0, 12.0), (11.0, 13.0), (14.0, 20.0)]):
        document = runner_document(
            [], reported_ms={"p50": p50, "p90": p90, "min": 4.0}, version="1.30.0"
        )
        store.add_measurement(
            run_id=run_id,
            model_sha256=reported_sha,
            config={"threads": 4},
            trial=trial,
            status="ok",
            reason=None,
            document=document,
        )
    store.add_measurement(
        run_id=other,
        model_sha256=reported_sha,
        config={"threads": 4},
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([1.0]),
    )
    frame = store.results_frame([run_id])
    assert len(frame) == 2
    failed = frame[frame["sha256"] == failed_sha].iloc[0]
    assert (failed["status"], failed["trials"], failed["failed_trials"]) == ("failed", 2, 2)
    assert failed["p50_ms"] != failed["p50_ms"]  # NaN
    assert failed["samples"] == 0
    reported = frame[frame["sha256"] == reported_sha].iloc[0]
    assert reported["name"] == "m"
    assert (reported["p50_ms"], reported["p90_ms"], reported["min_ms"]) == (11.0, 13.0, 4.0)
    # Without samples the within-process interval is unknown; the trials still give one.
    assert reported["within_ci_low_ms"] != reported["within_ci_low_ms"]
    across = cross_trial_interval([10.0, 11.0, 14.0])
    assert (reported["ci_low_ms"], reported["ci_high_ms"]) == (across.ci_low_ms, across.ci_high_ms)
    assert reported["runtime_version"] == "1.30.0"
    assert reported["trial_medians_ms"] == [10.0, 11.0, 14.0]
    # 10, 11 and 14 ms differ by 17 % (SD of logs): beyond the 10 % spread limit.
    assert reported["flags"] == "spread"
    assert "trials differ by 17%" in reported["unreliable"]
    assert reported["status"] == "ok"
    assert len(store.results_frame()) == 3
    assert len(store.results_frame([])) == 0
    assert list(store.results_frame([999]).columns) == [*RESULT_COLUMNS, *RESULT_EXTRA_COLUMNS]


def test_measurements_frame(store: Store) -> None:
    run_id = new_run(store)
    store.upsert_model(MODEL)
    store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config={"threads": 1},
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([1.0, 2.0, 3.0, 4.0]),
    )
    store.add_measurement(
        run_id=run_id,
        model_sha256=MODEL.sha256,
        config={"threads": 1},
        trial=1,
        status="failed",
        reason="crash",
        document=None,
    )
    frame = store.measurements_frame([run_id])
    assert list(frame["trial"]) == [0, 1]
    ok, failed = frame.iloc[0], frame.iloc[1]
    assert (ok["status"], ok["samples"], ok["p50_ms"], ok["samples_ms"]) == (
        "ok",
        4,
        2.5,
        [1.0, 2.0, 3.0, 4.0],
    )
    assert ok["flags"] == "high_cv,far_min,far_max,few_samples"  # 1..4 ms; min_samples 10
    assert (failed["status"], failed["reason"], failed["samples"]) == ("failed", "crash", 0)
    connection = sqlite3.connect(store.path)
    try:
        stored = connection.execute(
            "SELECT n_samples, p50_ms, document FROM measurements WHERE trial = 0"
        ).fetchone()
    finally:
        connection.close()
    assert stored[:2] == (4, 2.5)
    assert json.loads(stored[2])["schema"] == "mnbench.runner/1"


def test_results_frame_is_in_grid_order(store: Store) -> None:
    run_id = new_run(store)
    grid = [(1.0, 224), (0.25, 224), (0.25, 96), (0.5, 128)]
    for alpha, resolution in grid:
        sha = f"{alpha}-{resolution}".ljust(64, "0")
        store.upsert_model(
            ModelRecord(
                sha256=sha,
                name=f"mobilenet_v1_{alpha}_{resolution}",
                alpha=alpha,
                resolution=resolution,
                variant="separable",
            )
        )
        for threads in (4, 1):
            store.add_measurement(
                run_id=run_id,
                model_sha256=sha,
                config={"threads": threads},
                trial=0,
                status="ok",
                reason=None,
                document=runner_document([1.0, 1.1]),
            )
    store.add_measurement(
        run_id=run_id,
        model_sha256="0" * 64,
        config={"threads": 1},
        trial=0,
        status="ok",
        reason=None,
        document=runner_document([1.0]),
    )
    frame = store.results_frame([run_id])
    order = list(
        zip(
            frame["alpha"].fillna(-1), frame["resolution"].fillna(-1), frame["threads"], strict=True
        )
    )
    assert order == [
        (0.25, 96, 1),
        (0.25, 96, 4),
        (0.25, 224, 1),
        (0.25, 224, 4),
        (0.5, 128, 1),
        (0.5, 128, 4),
        (1.0, 224, 1),
        (1.0, 224, 4),
        (-1, -1, 1),
    ]
