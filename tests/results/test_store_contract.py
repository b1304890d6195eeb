"""The store's contract, run against both backends: an SQLite file and a real PostgreSQL server.

Every test here takes ``location`` (a fresh database of one backend) and goes through the
public ``Store`` interface only; what differs by backend (opening errors, credentials) is
at the end, for PostgreSQL alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from results.errors import ResultsError
from results.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    LeaseHeld,
    Migration,
    ModelRecord,
    Store,
    config_key,
)
from tests.fixtures.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("sqlite", "postgresql")

MODEL = ModelRecord(
    sha256="a" * 64,
    name="mobilenet_v1_0.25_128",
    alpha=0.25,
    resolution=128,
    variant="separable",
    kernel=3,
    precision="fp32",
    macs=14_000_000,
    params=470_000,
    weight_bytes=1_880_000,
    peak_activation_bytes=200_000,
    file_bytes=1_900_000,
    cost={"layers": {"conv0": {"macs": 10, "bytes": 4}}, "probe": {"role": "stem"}},
)


def document(samples_ms: list[float], version: str = "1.31.1") -> dict[str, Any]:
    return {
        "schema": "mnbench.runner/1",
        "status": "ok",
        "model": {"path": "/tmp/m.onnx", "file_bytes": 1234},
        "runtime": {"name": "onnxruntime", "version": version},
        "timings": {"session_create_ms": 40.0, "first_inference_ms": 12.5},
        "memory": {"peak_rss_end_bytes": 80 * 2**20, "peak_rss_after_load_bytes": 60 * 2**20},
        "samples_ms": samples_ms,
        "settings": {"min_samples": 3},
        "stop_reason": "ci_target",
    }


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return tmp_path / "contract.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def store(location: Path | str) -> Iterator[Store]:
    with Store.open(location) as opened:
        yield opened


def new_run(store: Store, label: str | None = None, device: str = "local") -> int:
    return store.create_run(
        device=device,
        device_kind="local",
        device_facts={"cpu_model": "Test CPU", "logical_cores": 2, "limits": {"peak_gflop_s": 9.5}},
        config={"trials": 2},
        harness_version="0.1.0",
        runtime_version=None,
        label=label,
    )


def test_a_new_database_is_at_the_current_version(location: Path | str) -> None:
    with Store.open(location) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    with Store.open(location) as store:  # reopening changes nothing
        assert store.schema_version == SCHEMA_VERSION
        assert store.list_runs() == []


def test_migrations_step_by_step_and_newer_refused(location: Path | str) -> None:
    with Store.open(location, migrations=MIGRATIONS[:1]) as store:
        assert store.schema_version == 1
        run_id = new_run(store)
    with Store.open(location) as store:  # an old database upgrades in place, data kept
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_run(run_id).device == "local"
    newer: list[Migration] = [*MIGRATIONS, "ALTER TABLE runs ADD COLUMN note TEXT;"]
    with Store.open(location, migrations=newer) as store:
        assert store.schema_version == SCHEMA_VERSION + 1
    with pytest.raises(ResultsError, match=rf"newer mnbench \(schema version {SCHEMA_VERSION + 1}"):
        Store.open(location)


def test_a_failed_migration_rolls_back(location: Path | str) -> None:
    with Store.open(location) as store:
        new_run(store)
    broken: list[Migration] = [
        *MIGRATIONS,
        "ALTER TABLE runs ADD COLUMN note TEXT;",
        "ALTER TABLE no_such_table ADD COLUMN x TEXT;",
    ]
    with pytest.raises(ResultsError):
        Store.open(location, migrations=broken)
    with Store.open(location) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert len(store.list_runs()) == 1


def test_runs_resolve_and_status(store: Store) -> None:
    with pytest.raises(ResultsError, match="holds no runs yet"):
        store.resolve_run_id("latest")
    first = new_run(store, label="baseline")
    second = new_run(store)
    assert second > first
    assert store.resolve_run_id(None) == store.resolve_run_id("latest") == second
    assert store.resolve_run_id("baseline") == first
    assert store.resolve_run_id(str(first)) == first
    with pytest.raises(ResultsError, match=r"no run 99 in .*lists the runs"):
        store.resolve_run_id(99)
    with pytest.raises(ResultsError, match="no run"):
        store.resolve_run_id(str(2**70))
    assert store.get_run(first).status == "interrupted"  # running, but nobody holds it
    store.set_run_status(first, "complete")
    record = store.get_run(first)
    assert record.status == "complete" and record.finished_at is not None
    assert record.device_facts["logical_cores"] == 2
    store.set_runtime_version(first, "1.31.1")
    assert store.get_run(first).runtime_version == "1.31.1"
    with pytest.raises(ResultsError, match="no run 77"):
        store.set_run_status(77, "failed")
    assert [run.id for run in store.list_runs()] == [first, second]


def test_measurements_replace_by_key_and_resume_keys(store: Store) -> None:
    run_id = new_run(store)
    store.upsert_model(MODEL)
    config = {"threads": 1, "cpus": None}
    first = store.add_measurement(
        run_id=run_id, model_sha256=MODEL.sha256, config=config, trial=1,
        status="failed", reason="crashed", document=None,
    )  # fmt: skip
    again = store.add_measurement(
        run_id=run_id, model_sha256=MODEL.sha256, config={"cpus": None, "threads": 1}, trial=1,
        status="ok", reason=None, document=document([1.0, 2.0, 3.0]),
    )  # fmt: skip
    assert again == first  # the same key: one row, replaced
    store.add_measurement(
        run_id=run_id, model_sha256=MODEL.sha256, config=config, trial=2,
        status="failed", reason="timed out", document=None,
    )  # fmt: skip
    key = config_key(config)
    assert store.completed_keys(run_id) == {(MODEL.sha256, key, 1), (MODEL.sha256, key, 2)}
    assert store.completed_keys(run_id, include_failed=False) == {(MODEL.sha256, key, 1)}
    record = store.get_run(run_id)
    assert (record.measurements, record.failed_measurements) == (2, 1)
    with pytest.raises(ResultsError, match="no run 555"):
        store.add_measurement(
            run_id=555, model_sha256=MODEL.sha256, config=config, trial=1,
            status="ok", reason=None, document=None,
        )  # fmt: skip


def test_models_costs_bursts_and_latency_models(store: Store) -> None:
    run_id = new_run(store)
    store.upsert_model(MODEL)
    store.upsert_model(ModelRecord(sha256=MODEL.sha256, name="renamed", macs=1))
    assert store.model_costs([MODEL.sha256, "f" * 64]) == {}  # the refresh cleared the card
    store.upsert_model(MODEL)
    assert store.model_costs([MODEL.sha256])[MODEL.sha256]["probe"] == {"role": "stem"}
    config = {"threads": 1}
    store.add_bursts(
        run_id=run_id, model_sha256=MODEL.sha256, config=config, pair=1,
        bursts=[(0, "A", 1.5, [1.0, 1.25]), (1, "B", None, [2.0])],
    )  # fmt: skip
    store.add_bursts(
        run_id=run_id, model_sha256=MODEL.sha256, config=config, pair=1,
        bursts=[(1, "B", 3.0, [2.5, 2.75])],
    )  # fmt: skip
    bursts = store.bursts(run_id)
    assert [(b["position"], b["side"], b["start_unix"], b["samples_ms"]) for b in bursts] == [
        (0, "A", 1.5, [1.0, 1.25]),
        (1, "B", 3.0, [2.5, 2.75]),
    ]
    first = store.add_latency_model(
        device="local", runtime_version="1.31.1", threads=1, precision="fp32",
        run_ids=[run_id, run_id], model_json='{"a": 1}',
    )  # fmt: skip
    second = store.add_latency_model(
        device="local", runtime_version="1.32.0", threads=1, precision="fp32",
        run_ids=[run_id], model_json='{"a": 2}',
    )  # fmt: skip
    assert store.latest_latency_model(device="local", threads=1, precision="fp32") == (
        second, "1.32.0", (run_id,), '{"a": 2}'
    )  # fmt: skip
    latest = store.latest_latency_model(
        device="local", threads=1, precision="fp32", runtime_version="1.31.1"
    )
    assert latest is not None and latest[0] == first
    assert store.latest_latency_model(device="pi4", threads=1, precision="fp32") is None


_HOLDER = textwrap.dedent(
    """
    import sys
    from results.store import Store
    with Store.open(sys.argv[1]) as store, store.lease(int(sys.argv[2]), "mnbench run", 600.0):
        print("held", flush=True)
        sys.stdin.read()
    """
)


def _python_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def test_leases_exclude_a_second_measurer(location: Path | str) -> None:
    with Store.open(location) as store:
        run_id = new_run(store)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(location), str(run_id)],
            env=_python_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert store.get_run(run_id).status == "running"
            held = store.lease_holder(run_id)
            assert held is not None and held["holder"] == "mnbench run"
            with (
                pytest.raises(LeaseHeld, match=f"run {run_id} is being measured"),
                store.lease(run_id, "mnbench run --resume", 600.0),
            ):
                pass
        finally:
            holder.communicate("", timeout=60)
        assert holder.returncode == 0
        assert store.lease_holder(run_id) is None
        with store.lease(run_id, "mnbench run --resume", 600.0):
            store.heartbeat(run_id)


def test_a_stale_lease_is_taken_over_and_its_holder_stops(location: Path | str) -> None:
    with Store.open(location) as first, Store.open(location) as second:
        run_id = new_run(first)
        with (
            first.lease(run_id, "mnbench run", 0.0),  # stale at once
            second.lease(run_id, "mnbench run --resume", 600.0),
        ):
            with pytest.raises(LeaseHeld, match="lost its lease"):
                first.add_measurement(
                    run_id=run_id, model_sha256="b" * 64, config={"threads": 1},
                    trial=1, status="ok", reason=None, document=None,
                )  # fmt: skip
            assert first.completed_keys(run_id) == set()


def _fill(store: Store) -> list[int]:
    store.upsert_model(MODEL)
    store.upsert_model(ModelRecord(sha256="c" * 64, name="foreign"))
    runs = [new_run(store, label="a"), new_run(store, label="b", device="pi4")]
    for run_id in runs:
        for trial in (1, 2):
            for threads in (1, 2):
                store.add_measurement(
                    run_id=run_id, model_sha256=MODEL.sha256,
                    config={"threads": threads, "cpus": [0, 1]}, trial=trial, status="ok",
                    reason=None, document=document([1.0 * threads, 1.5 * trial, 2.0, 2.25]),
                )  # fmt: skip
            store.add_measurement(
                run_id=run_id, model_sha256="c" * 64, config={"threads": 1, "cpus": None},
                trial=trial, status="ok" if trial == 1 else "failed",
                reason=None if trial == 1 else "crashed",
                document=document([3.0, 3.5, 4.0]) if trial == 1 else None,
            )  # fmt: skip
    return runs


def test_frames_are_the_same_on_both_backends(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    for backend, where in (
        ("sqlite", tmp_path / "frames.sqlite"),
        ("postgresql", postgres_server.create_database()),
    ):
        with Store.open(where) as store:
            runs = _fill(store)
            frames[backend] = {
                "results": store.results_frame(),
                "measurements": store.measurements_frame(runs[:1]).drop(columns="created_at"),
                "runs": store.runs_frame().drop(columns=["created_at", "finished_at"]),
            }
    for name in ("results", "measurements", "runs"):
        left, right = frames["sqlite"][name], frames["postgresql"][name]
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    results = frames["postgresql"]["results"]
    assert list(results["status"]) == ["ok", "ok", "partial"] * 2
    assert results["p50_ms"].notna().all()


_WRITER = textwrap.dedent(
    """
    import sys
    from results.store import Store
    location, run_id, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Store.open(location) as store:
        for trial in range(1, 51):
            store.add_measurement(
                run_id=run_id, model_sha256="d" * 64, config={"threads": 1, "worker": worker},
                trial=trial, status="ok", reason=None, document={"samples_ms": [1.0, 2.0]},
            )
    """
)


def test_four_processes_write_at_once(location: Path | str) -> None:
    with Store.open(location) as store:
        run_id = new_run(store)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(location), str(run_id), str(worker)],
            env=_python_env(),
            stderr=subprocess.PIPE,
        )
        for worker in range(4)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    with Store.open(location) as store:
        keys = store.completed_keys(run_id)
        assert len(keys) == 200
        assert store.get_run(run_id).measurements == 200  # none lost, none duplicated


# -- PostgreSQL alone: opening errors and credentials --------------------------------------


def test_server_errors_are_one_line(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    cases = {
        "refused the password": url,  # with a password file that has the wrong password
        "does not exist; create it": postgres_server.url("no_such_db"),
        "cannot reach PostgreSQL at postgresql://mnbench@127.0.0.1:1/x": (
            "postgresql://mnbench@127.0.0.1:1/x"
        ),
        "carries a password; remove it": url.replace("mnbench@", "mnbench:hunter2@"),
    }
    wrong = Path(str(postgres_server.passfile) + ".wrong")
    wrong.write_text(f"*:*:*:{postgres_server.user}:not-the-password\n")
    wrong.chmod(0o600)
    for expected, target in cases.items():
        previous = os.environ["PGPASSFILE"]
        if expected == "refused the password":
            os.environ["PGPASSFILE"] = str(wrong)
        try:
            with pytest.raises(ResultsError) as caught:
                Store.open(target)
        finally:
            os.environ["PGPASSFILE"] = previous
        message = caught.value.message
        assert expected in message and "\n" not in message
        assert "hunter2" not in message and postgres_server.password not in message


def test_a_database_that_is_not_ours_is_refused(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    postgres_server.psql(url.rsplit("/", 1)[1], "CREATE TABLE customers (id INT)")
    with pytest.raises(ResultsError, match=r"is not an mnbench database .*without an mnbench meta"):
        Store.open(url)


def test_the_password_is_never_stored(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    with Store.open(url) as store:
        _fill(store)
        assert postgres_server.password not in str(store.path)
    dump = subprocess.run(
        [str(postgres_server.bin_dir / "pg_dump"), "--data-only", url],
        env={**os.environ},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "meta" in dump and postgres_server.password not in dump


# -- the lab's work queue --------------------------------------------------------------------


def _queue(store: Store, campaign: str = "c", device: str = "dev", items: int = 3) -> int:
    from results.queue import Lab

    run_id = new_run(store, device=device)
    keys = [(MODEL.sha256, config_key({"threads": 1}), trial) for trial in range(1, items + 1)]
    assert Lab(store).enqueue(campaign, device, run_id, keys) == items
    assert Lab(store).enqueue(campaign, device, run_id, keys) == 0  # queued once
    return run_id


def test_items_are_claimed_in_order_and_committed_once(location: Path | str) -> None:
    from results.queue import BUSY, Lab, WorkItem

    with Store.open(location) as first_store, Store.open(location) as second_store:
        run_id = _queue(first_store)
        first, second = Lab(first_store, lease_s=600.0), Lab(second_store, lease_s=600.0)
        item = first.claim("dev")
        assert isinstance(item, WorkItem) and (item.trial, item.attempts) == (1, 1)
        assert second.claim("dev") == BUSY  # the device is held by a live worker
        assert first.heartbeat(item)
        measurement = first.complete(item, "ok", None, document([1.0, 2.0]))
        assert measurement is not None
        assert first.complete(item, "ok", None, document([9.0])) is None  # done already
        assert [d.done for d in first.status("c")] == [1]
        for trial in (2, 3):
            item = first.claim("dev")
            assert isinstance(item, WorkItem) and item.trial == trial
            assert first.complete(item, "failed" if trial == 3 else "ok", "x", None)
        assert first.claim("dev") is None  # nothing left: the device is released
        (status,) = first.status()
        assert (status.pending, status.claimed, status.done, status.failed) == (0, 0, 3, 1)
        assert status.holder is None and not status.live
        assert first_store.get_run(run_id).status == "complete"
        assert len(first_store.completed_keys(run_id)) == 3


def test_an_expired_claim_is_reclaimed_and_the_late_worker_dropped(
    location: Path | str,
) -> None:
    from results.queue import Lab, WorkItem

    with Store.open(location) as dead_store, Store.open(location) as live_store:
        run_id = _queue(dead_store, items=1)
        dead, live = Lab(dead_store, lease_s=0.0), Lab(live_store, lease_s=600.0)
        lost = dead.claim("dev")
        assert isinstance(lost, WorkItem)
        taken = live.claim("dev")  # the lease of 0 s has ended
        assert isinstance(taken, WorkItem) and taken.id == lost.id and taken.attempts == 2
        assert not dead.heartbeat(lost)
        assert dead.complete(lost, "ok", None, document([5.0])) is None
        assert live.complete(taken, "ok", None, document([1.0])) is not None
        frame = live_store.measurements_frame([run_id])
        assert list(frame["p50_ms"]) == [1.0]  # the reclaimer's measurement, once


def test_an_abandoned_item_goes_back_at_once(location: Path | str) -> None:
    from results.queue import Lab, WorkItem

    with Store.open(location) as one_store, Store.open(location) as other_store:
        _queue(one_store, items=1)
        one, other = Lab(one_store, lease_s=600.0), Lab(other_store, lease_s=600.0)
        item = one.claim("dev")
        assert isinstance(item, WorkItem)
        one.abandon(item)
        one.release("dev")
        again = other.claim("dev")
        assert isinstance(again, WorkItem) and again.id == item.id and again.attempts == 2
        assert other.claim("elsewhere") is None  # a device no campaign planned
