"""The lab: a campaign planned as work items, worked by several harness processes at once.

Real parts throughout: a PostgreSQL server (tests/fixtures/postgres.py), ``mnbench lab``
in separate processes, the real runner and onnxruntime measuring on this CPU (two local
devices of an inventory, so two workers can measure at once) and on the adb simulator's
phone through the real adb client. One worker is frozen and
killed while it holds an item: the item must be claimed again when its lease ends, and
every item must end with exactly one committed measurement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from results.copy import campaign_runs
from results.queue import Lab
from results.store import Store
from tests.fixtures.adb import AdbPhone
from tests.fixtures.postgres import PostgresServer, find_bin_dir, start_server
from tests.tooling import skip_or_fail

REPO = Path(__file__).resolve().parents[2]


def tiny(trials: int) -> list[str]:
    """One small model, one thread count, short trials."""
    return [
        "--alpha", "0.25", "--resolution", "32", "--threads", "1", "--trials", str(trials),
        "--min-time", "0.05", "--max-time", "0.2", "--target-ci", "50",
    ]  # fmt: skip


LEASE = ["--lease", "3"]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def mnbench(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its runner children share its process group
    )


def finish(process: subprocess.Popen[str], timeout_s: float = 240.0) -> tuple[int, str]:
    try:
        out, err = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, out + err


def require_server() -> None:
    if find_bin_dir() is None:
        skip_or_fail("PostgreSQL server binaries are not installed (apt-get install postgresql)")


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    (tmp_path / "devices.toml").write_text(
        '[devices.cpu-a]\nkind = "local"\n\n[devices.cpu-b]\nkind = "local"\n'
    )
    return tmp_path


def _claimed_by(url: str, pid: int) -> tuple[int, str] | None:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT id, token FROM work_items WHERE state = 'claimed' AND pid = %s", (pid,)
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _kill_while_claiming(url: str, worker: subprocess.Popen[str]) -> int:
    """Freeze the worker (and its runner) while it holds an item, check that it still does,
    kill it; the item's id."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert worker.poll() is None, finish(worker)[1]
        if _claimed_by(url, worker.pid) is not None:
            os.killpg(worker.pid, signal.SIGSTOP)
            held = _claimed_by(url, worker.pid)
            if held is not None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.communicate()
                return held[0]
            os.killpg(worker.pid, signal.SIGCONT)  # it committed in between: next item
        time.sleep(0.02)
    raise AssertionError("the worker never claimed an item")


def _check_integrity(url: str, campaign_items: int) -> Sequence[tuple[int, int, int]]:
    with psycopg.connect(url, autocommit=True) as connection:
        states = connection.execute(
            "SELECT state, COUNT(*) FROM work_items GROUP BY state"
        ).fetchall()
        assert states == [("done", campaign_items)]
        items = connection.execute(
            "SELECT w.id, w.attempts, m.id FROM work_items w JOIN measurements m "
            "ON m.id = w.measurement_id AND m.run_id = w.run_id AND m.model_sha256 = "
            "w.model_sha256 AND m.config_key = w.config_key AND m.trial = w.trial ORDER BY w.id"
        ).fetchall()
        assert len(items) == campaign_items  # each item points at its own measurement
        measurements = connection.execute("SELECT COUNT(*) FROM measurements").fetchone()
        assert measurements == (campaign_items,)  # none duplicated, none stray
        assert len({row[2] for row in items}) == campaign_items
        free = connection.execute(
            "SELECT COUNT(*) FROM lab_devices WHERE token IS NOT NULL"
        ).fetchone()
        assert free == (0,)
    return [(int(a), int(b), int(c)) for a, b, c in items]


def test_workers_measure_every_item_exactly_once_and_reclaim_a_killed_ones(
    postgres_server: PostgresServer, lab_dir: Path, adb_phone: AdbPhone
) -> None:
    server = adb_phone.server
    with (lab_dir / "devices.toml").open("a") as inventory_file:
        inventory_file.write(
            f'\n[devices.phone]\nkind = "adb"\nserial = "{adb_phone.serial}"\n'
            f'adb = "{server.adb}"\nadb_server = "127.0.0.1:{server.port}"\n'
            f'python = "{sys.executable}"\n'
        )
    url = postgres_server.create_database()
    inventory = ["--inventory", str(lab_dir / "devices.toml"), "--db", url]
    rc, output = finish(
        mnbench(lab_dir, "lab", "plan", "--campaign", "nightly", "--devices", "cpu-a", "cpu-b",
                "phone", *tiny(3), *inventory)
    )  # fmt: skip
    assert rc == 0, output
    assert output.count("3 items") == 3

    doomed = mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", *LEASE, *inventory)
    killed_item = _kill_while_claiming(url, doomed)

    workers = [
        mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", "cpu-b", "phone", *LEASE,
                *inventory),
        mnbench(lab_dir, "lab", "work", "--devices", "phone", "cpu-b", "cpu-a", *LEASE,
                *inventory),
    ]  # fmt: skip
    results = [finish(worker) for worker in workers]
    for rc, output in results:
        assert rc == 0, output
        assert "Traceback" not in output

    items = _check_integrity(url, campaign_items=9)
    attempts = {item_id: tries for item_id, tries, _ in items}
    assert attempts[killed_item] == 2  # claimed again after the killed worker's lease ended
    assert sorted(attempts.values()).count(1) == 8
    committed = sum(output.count(" ok\n") for _, output in results)
    assert 8 <= committed <= 9  # the killed worker may have committed one before its end

    with Store.open(url, readonly=True) as store:
        runs = campaign_runs(store, "nightly")
        assert [store.get_run(run).status for run in runs] == ["complete"] * 3
        frame = store.results_frame(runs)
        assert list(frame["trials"]) == [3, 3, 3] and (frame["status"] == "ok").all()
        status = Lab(store).status("nightly")
        assert [(d.device, d.pending, d.claimed, d.done, d.holder) for d in status] == [
            ("cpu-a", 0, 0, 3, None),
            ("cpu-b", 0, 0, 3, None),
            ("phone", 0, 0, 3, None),
        ]
        kinds = sorted(store.get_run(run).device_kind for run in runs)
        assert kinds == ["adb", "local", "local"]

    rc, output = finish(mnbench(lab_dir, "lab", "status", *inventory))
    assert rc == 0 and "cpu-a" in output and "free" in output, output
    assert postgres_server.password not in output


def test_a_worker_on_sqlite_and_db_copy_to_postgres(
    postgres_server: PostgresServer, lab_dir: Path
) -> None:
    """One host's lab on an SQLite file, then the campaign copied into the shared store,
    twice: the second copy refreshes and adds nothing."""
    db = str(lab_dir / "lab.sqlite")
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", db]
    assert finish(mnbench(lab_dir, "lab", "plan", "--campaign", "laptop", "--devices", "cpu-a",
                          *tiny(2), *common))[0] == 0  # fmt: skip
    rc, output = finish(mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", *common))
    assert rc == 0, output
    url = postgres_server.create_database()
    for verb in ("copied", "refreshed"):
        rc, output = finish(mnbench(lab_dir, "db", "copy", db, url, "--campaign", "laptop"))
        assert rc == 0 and verb in output, output
    with Store.open(db, readonly=True) as local, Store.open(url, readonly=True) as shared:
        assert len(shared.list_runs()) == 1
        left = local.results_frame().drop(columns=["run_id"])
        right = shared.results_frame().drop(columns=["run_id"])
        assert left.equals(right)
    back = lab_dir / "back.sqlite"
    rc, output = finish(mnbench(lab_dir, "db", "copy", url, str(back)))
    assert rc == 0, output
    with Store.open(back, readonly=True) as copy:
        assert copy.get_run(1).measurements == 2


def _done(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT COUNT(*) FROM work_items WHERE state = 'done'").fetchone()
    return int(row[0]) if row else 0


def _wait_for_done(url: str, worker: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _done(url) < at_least:
        assert worker.poll() is None, finish(worker)[1]
        assert time.monotonic() < deadline, "no item was committed"
        time.sleep(0.05)


def test_a_lost_connection_is_reconnected_or_stops_the_worker_with_one_line(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server of its own, stopped under a working worker: briefly (the worker reconnects
    and finishes), then for longer than the worker waits (it stops with one line, keeps
    what it committed, and the same command finishes the campaign)."""
    require_server()
    with start_server() as server:
        monkeypatch.setenv("PGPASSFILE", str(server.passfile))
        url = server.create_database()
        common = ["--inventory", str(lab_dir / "devices.toml"), "--db", url]
        for campaign in ("brief", "long"):
            rc, output = finish(mnbench(lab_dir, "lab", "plan", "--campaign", campaign,
                                        "--devices", "cpu-a", *tiny(3), *common))  # fmt: skip
            assert rc == 0, output

        patient = mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", "--campaign", "brief",
                          "--reconnect", "60", *LEASE, *common)  # fmt: skip
        _wait_for_done(url, patient, 1)
        server.stop()
        time.sleep(1.0)
        server.start()
        rc, output = finish(patient)
        assert rc == 0, output
        assert "lost the connection to " + url in output and "reconnecting" in output
        assert _done(url) == 3

        hasty = mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", "--campaign", "long",
                        "--reconnect", "1", *LEASE, *common)  # fmt: skip
        _wait_for_done(url, hasty, 4)
        server.stop()
        try:
            rc, output = finish(hasty)
        finally:
            server.start()
        assert rc == 2, output
        stopped = [line for line in output.splitlines() if "stopped:" in line]
        assert len(stopped) == 1 and "cannot reach PostgreSQL" in stopped[0], output
        print(output)
        assert "Traceback" not in output and server.password not in output
        kept = _done(url)
        assert kept >= 4  # what was committed before the outage is there

        rc, output = finish(mnbench(lab_dir, "lab", "work", "--devices", "cpu-a", *LEASE, *common))
        assert rc == 0, output
        items = _check_integrity(url, campaign_items=6)
        assert len(items) == 6


def test_run_on_several_devices_measures_each_and_an_unreachable_one_stops_no_other(
    lab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mnbench run --device GROUP broken``: one run per reachable device, measured at
    once through the lab's queue on the run's SQLite file; the unreachable device is said,
    the others are complete."""
    from harness.cli import main

    with (lab_dir / "devices.toml").open("a") as inventory:
        inventory.write(
            '\n[devices.broken]\nhost = "127.0.0.1"\nport = 1\nuser = "nobody"\n'
            '\n[groups]\ncpus = ["cpu-a", "cpu-b"]\n'
        )
    db = lab_dir / "several.sqlite"
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", str(db)]
    rc = main(["run", "--device", "cpus", "broken", *tiny(2), *common,
               "--models-dir", str(lab_dir / "models")])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "broken: not planned: connection refused" in captured.err
    assert "not reached: broken" in captured.err
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[2:]}
    assert rows["cpu-a"][2:5] == ["2", "0", "done"] and rows["cpu-b"][2:5] == ["2", "0", "done"]
    with Store.open(db, readonly=True) as store:
        runs = store.list_runs()
        assert sorted(run.device for run in runs) == ["cpu-a", "cpu-b"]
        assert {run.status for run in runs} == {"complete"}
        assert len({run.campaign for run in runs}) == 1 and runs[0].campaign  # one campaign
        campaign = runs[0].config["campaign"]
    assert main(["lab", "work", "--campaign", campaign, "--devices", "cpus", *common]) == 0


def test_a_crafted_item_is_refused_not_measured(
    lab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared database is read like the command line: an item outside its run's stored
    plan stops the device's worker with one line, and nothing is measured."""
    import sqlite3

    from harness.cli import main

    db = lab_dir / "crafted.sqlite"
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", str(db)]
    assert main(["lab", "plan", "--campaign", "c", "--devices", "cpu-a", *tiny(1), *common,
                 "--models-dir", str(lab_dir / "models")]) == 0  # fmt: skip
    with sqlite3.connect(db) as connection:
        connection.execute('UPDATE work_items SET config_key = \'{"cpus":null,"threads":64}\'')
    capsys.readouterr()
    assert main(["lab", "work", "--devices", "cpu-a", *common]) == 2
    err = capsys.readouterr().err
    stopped = [line for line in err.splitlines() if "stopped:" in line]
    assert len(stopped) == 1 and "is not part of run 1's stored plan" in stopped[0], err
    with Store.open(db, readonly=True) as store:
        assert store.get_run(1).measurements == 0
