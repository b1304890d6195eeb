"""The results store: runs, models and measurements in one database, written and read back.

Owns writing runs and measurements (each commits on its own, so an interrupted sweep loses
at most the one in flight), run leases (who is measuring a run now), resume keys, and
reading rows back; the frames built from those rows are ``results.views``, the schema and
its migrations ``results.schema``, and the database server behind a small connection
object ``results.backend`` (SQLite by default: stdlib sqlite3 in WAL mode). Sources:
docs/architecture.md (a versioned schema with migrations); asv (a schema version with
upgrade steps, files from a newer version refused); the runner's JSON document, schema
``mnbench.runner/1``, stored verbatim.

Concurrency: every write is one explicit transaction of the backend (SQLite's ``BEGIN
IMMEDIATE`` with a ``busy_timeout``), so two sweeps writing at once wait for each other
instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

from devices.processes import pid_alive
from results import views
from results.backend import Database, connect, not_mnbench, parse_location
from results.errors import ResultsError
from results.record import Measurement
from results.schema import (
    CAMPAIGN_VERSION,
    MIGRATIONS,
    READER_OPTIONAL,
    SCHEMA_VERSION,
    Migration,
    campaign_of,
)
from results.views import RESULT_COLUMNS, RESULT_EXTRA_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DB_ENV_VAR",
    "DEFAULT_DB_NAME",
    "MIGRATIONS",
    "READER_OPTIONAL",
    "RESULT_COLUMNS",
    "RESULT_EXTRA_COLUMNS",
    "SCHEMA_VERSION",
    "LeaseHeld",
    "MeasurementStatus",
    "Migration",
    "ModelRecord",
    "RunRecord",
    "RunStatus",
    "Store",
    "config_key",
    "default_db_path",
]

RunStatus = Literal["running", "complete", "interrupted", "failed"]
MeasurementStatus = Literal["ok", "failed"]

DB_ENV_VAR: Final = "MNBENCH_DB"
DEFAULT_DB_NAME: Final = "mnbench.sqlite"


class LeaseHeld(ResultsError):
    """Another live process is measuring this run (exit code 2)."""


def _lease_is_stale(pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float) -> bool:
    if time.time() - float(heartbeat_unix_s) > float(stale_after_s):
        return True
    return host == socket.gethostname() and (int(pid) == os.getpid() or not pid_alive(int(pid)))


def _held_message(
    run_id: int, holder: str, pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float
) -> str:
    age_s = max(0.0, time.time() - float(heartbeat_unix_s))
    return (
        f"run {run_id} is being measured by {holder} (pid {pid} on {host}, last heartbeat "
        f"{age_s:.0f} s ago); wait for it to finish or stop it, a lease older than "
        f"{float(stale_after_s):.0f} s is taken over"
    )


def default_db_path() -> Path | str:
    """``$MNBENCH_DB`` when set (a file path, or a ``postgresql://`` URL), else
    ``./mnbench.sqlite``."""
    configured = os.environ.get(DB_ENV_VAR, "").strip()
    return parse_location(configured) if configured else Path(DEFAULT_DB_NAME)


def config_key(config: Mapping[str, object]) -> str:
    """Canonical JSON of a per-measurement configuration: keys sorted, no spaces.

    Equal configurations give equal keys whatever the key order, so resume can match them.
    """
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``models``; alpha/resolution/variant/kernel are None for foreign models."""

    sha256: str
    name: str
    alpha: float | None = None
    resolution: int | None = None
    variant: str | None = None
    kernel: int | None = None
    precision: str | None = None
    macs: int | None = None
    params: int | None = None
    weight_bytes: int | None = None
    peak_activation_bytes: int | None = None
    file_bytes: int | None = None
    cost: Mapping[str, object] | None = None


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs`` with its JSON parsed, plus measurement counts."""

    id: int
    label: str | None
    created_at: str
    finished_at: str | None
    status: RunStatus
    """As stored, except that a ``running`` run no live process holds the lease of (see
    ``Store.lease``) reads ``interrupted``."""
    device: str
    device_kind: str
    device_facts: Mapping[str, Any]
    config: Mapping[str, Any]
    harness_version: str
    runtime_version: str | None
    measurements: int
    failed_measurements: int
    campaign: str | None = None
    """The lab campaign the run was planned in (``runs.campaign``), None for a lone run."""


class Store:
    """An open results database; use as a context manager or call ``close()``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.path = database.location
        """What messages name: the SQLite file, or the server URL without a password."""
        self._leases: dict[int, str] = {}

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        create: bool = True,
        readonly: bool = False,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Store:
        """Open (and create or upgrade) the database at ``path`` (default: default_db_path()).

        ``create=False`` refuses a missing file instead of creating an empty database (for
        verbs that only read). ``readonly=True`` (implies ``create=False``) opens it without
        writing anything: no upgrade, no journal-mode change, and on a read-only file,
        directory or mount SQLite's read-only (or immutable) mode. A writer on a read-only database
        is refused up front, saying so. ``migrations`` exists so tests can stand in a
        longer list.
        """
        location = path if path is not None else default_db_path()
        database = connect(location, create=create, readonly=readonly)
        store = cls(database)
        try:
            if readonly:
                store._prepare_readonly(list(migrations))
            else:
                store._prepare(list(migrations))
        except BaseException:
            database.close()
            raise
        return store

    def _prepare_readonly(self, migrations: list[Migration]) -> None:
        supported = len(migrations)
        try:
            version = self._schema_version()
        except self.database.errors as exc:
            raise self.database.refusal(exc) from None
        if version == 0:
            raise ResultsError(f"{self.path} holds no runs yet; measure with `mnbench run`")
        self._check_version(version, supported)
        if version < supported and not all(
            step in READER_OPTIONAL for step in migrations[version:]
        ):
            raise ResultsError(
                f"{self.path} has schema version {version} and this mnbench reads {supported}; "
                "upgrade it by writing to it once (e.g. `mnbench run --db ...`), or use the "
                "mnbench that wrote it"
            )

    def _prepare(self, migrations: list[Migration]) -> None:
        db = self.database
        try:
            version = self._schema_version()
            if version != len(migrations):
                self._check_version(version, len(migrations))
                with db.transaction():
                    db.lock_schema()
                    # Another process may have upgraded it between the read and the lock.
                    version = self._schema_version()
                    self._check_version(version, len(migrations))
                    for step in migrations[version:]:
                        db.run_step(step)
                    if version < len(migrations):
                        self._set_meta("schema_version", str(len(migrations)))
                        if version == 0:
                            self._set_meta("created_at", _now())
            db.after_migrations()
        except db.errors as exc:
            raise db.refusal(exc) from None

    def _set_meta(self, key: str, value: str) -> None:
        self.database.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _schema_version(self) -> int:
        tables = self.database.tables()
        if not tables:
            return 0
        if "meta" not in tables:
            raise not_mnbench(
                self.path, f"an {self.database.kind} database without an mnbench meta table"
            )
        row = self.database.one("SELECT value FROM meta WHERE key = 'schema_version'")
        if row is None or not str(row[0]).isdigit():
            raise not_mnbench(self.path, "its meta table has no schema_version")
        return int(row[0])

    def _check_version(self, found: int, supported: int) -> None:
        if found > supported:
            raise ResultsError(
                f"{self.path} was written by a newer mnbench (schema version {found}, this "
                f"one reads up to {supported}); upgrade mnbench or pass another --db"
            )

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction, taken up front so concurrent writers queue on the lock;
        the database to write through inside it (``insert_measurement``, ``results.lab``)."""
        with self.database.transaction():
            yield self.database

    _write = transaction

    def close(self) -> None:
        for run_id in list(self._leases):
            self.release_lease(run_id)
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._schema_version()

    # -- writing ---------------------------------------------------------------------------

    def create_run(
        self,
        *,
        device: str,
        device_kind: str,
        device_facts: Mapping[str, object],
        config: Mapping[str, object],
        harness_version: str,
        runtime_version: str | None,
        label: str | None,
        lease_holder: str | None = None,
        lease_stale_after_s: float = 900.0,
    ) -> int:
        """Record a new sweep (status ``running``) and return its id; ``config["campaign"]``
        (a lab campaign's runs) is also its ``campaign`` column.

        With ``lease_holder`` the run is leased to this store in the same transaction, so no
        ``--resume`` can take it before its sweep starts (see ``lease``).
        """
        values: list[object] = [
            label,
            _now(),
            device,
            device_kind,
            json.dumps(dict(device_facts)),
            json.dumps(dict(config)),
            harness_version,
            runtime_version,
        ]
        campaign = ""
        if self.has_campaigns:  # (a test's shorter migration list may stop before it)
            campaign = ", campaign"
            values.append(campaign_of(dict(config)))
        with self._write() as db:
            row = db.one(
                "INSERT INTO runs (label, created_at, status, device, device_kind, "
                f"device_facts, config, harness_version, runtime_version{campaign}) "
                f"VALUES (?, ?, 'running', {', '.join('?' * (len(values) - 2))}) RETURNING id",
                values,
            )
            run_id = int(row[0])
            if lease_holder is not None:
                self._acquire(db, run_id, lease_holder, lease_stale_after_s)
        return run_id

    def set_run_status(self, run_id: int, status: RunStatus) -> None:
        """Set a run's status; a final status stamps ``finished_at``, ``running`` clears it."""
        if status not in get_args(RunStatus):
            raise ValueError(f"unknown run status {status!r}")
        finished = None if status == "running" else _now()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, finished, run_id),
            )
            if cursor.rowcount != 1:
                raise self._no_run(run_id)

    def set_runtime_version(self, run_id: int, version: str) -> None:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET runtime_version = ? WHERE id = ?", (version, run_id)
            )
            if cursor.rowcount != 1:
                raise self._no_run(run_id)

    def upsert_model(self, record: ModelRecord) -> None:
        """Insert a model or refresh its row (the sha256 identifies the file)."""
        columns = (
            "sha256",
            "name",
            "alpha",
            "resolution",
            "variant",
            "kernel",
            "precision",
            "macs",
            "params",
            "weight_bytes",
            "peak_activation_bytes",
            "file_bytes",
            "cost",
        )
        values: list[object] = [getattr(record, column) for column in columns[:-1]]
        values.append(None if record.cost is None else json.dumps(dict(record.cost)))
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns[1:])
        with self._write() as db:
            db.execute(
                f"INSERT INTO models ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)}) "
                f"ON CONFLICT (sha256) DO UPDATE SET {updates}",
                values,
            )

    def add_measurement(
        self,
        *,
        run_id: int,
        model_sha256: str,
        config: Mapping[str, object],
        trial: int,
        status: MeasurementStatus,
        reason: str | None,
        document: Mapping[str, Any] | None,
    ) -> int:
        """Record one model × configuration × trial and commit it; return its id.

        Recording the same (run, model, configuration, trial) again replaces the earlier
        row, so a resumed sweep can retry a failed trial.
        """
        with self._write() as db:
            self._check_lease(db, run_id)
            return self.insert_measurement(
                db,
                run_id=run_id,
                model_sha256=model_sha256,
                config_key=config_key(config),
                trial=trial,
                status=status,
                reason=reason,
                document=document,
            )

    def insert_measurement(
        self,
        db: Database,
        *,
        run_id: int,
        model_sha256: str,
        config_key: str,
        trial: int,
        status: MeasurementStatus,
        reason: str | None,
        document: Mapping[str, Any] | None,
    ) -> int:
        """``add_measurement`` inside a write transaction the caller holds (``results.lab``
        commits a measurement and its work item together); the configuration as its key."""
        if status not in get_args(MeasurementStatus):
            raise ValueError(f"unknown measurement status {status!r}")
        threads = json.loads(config_key).get("threads")
        n_samples: int | None = None
        p50_ms: float | None = None
        if document is not None:
            samples = document.get("samples_ms") or []
            n_samples = len(samples)
            if samples:
                p50_ms = statistics.median(float(v) for v in samples)
            else:
                reported = document.get("reported_ms") or {}
                value = reported.get("p50") if isinstance(reported, Mapping) else None
                p50_ms = float(value) if isinstance(value, (int, float)) else None
        row = (
            run_id,
            model_sha256,
            config_key,
            threads if isinstance(threads, int) else None,
            trial,
            status,
            reason,
            _now(),
            None if document is None else json.dumps(dict(document)),
            n_samples,
            p50_ms,
        )
        try:
            found = db.one(
                "INSERT INTO measurements (run_id, model_sha256, config_key, threads, "
                "trial, status, reason, created_at, document, n_samples, p50_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, model_sha256, config_key, trial) DO UPDATE SET "
                "threads = excluded.threads, status = excluded.status, "
                "reason = excluded.reason, created_at = excluded.created_at, "
                "document = excluded.document, n_samples = excluded.n_samples, "
                "p50_ms = excluded.p50_ms RETURNING id",
                row,
            )
        except db.errors as exc:
            if db.is_foreign_key_error(exc):
                raise self._no_run(run_id) from None
            raise
        return int(found[0])

    # -- leases ----------------------------------------------------------------------------

    @contextmanager
    def lease(self, run_id: int, holder: str, stale_after_s: float) -> Iterator[None]:
        """Hold the run's measuring lease for the block; ``LeaseHeld`` if someone else has it.

        A lease records holder, pid, host and a heartbeat (``heartbeat``). It is taken over
        when its holder is a dead process on this host or its heartbeat is older than the
        holder's own ``stale_after_s``; the check and the take-over are one write
        transaction that locks the run's row, so of two measurers starting at once exactly
        one wins. A lease this store already holds (``create_run(lease_holder=...)``) is
        adopted and released at the end of the block.
        """
        if run_id not in self._leases:
            with self._write() as db:
                self._acquire(db, run_id, holder, stale_after_s)
        try:
            yield
        finally:
            self.release_lease(run_id)

    def _acquire(self, db: Database, run_id: int, holder: str, stale_after_s: float) -> None:
        if db.row_lock:  # serialise acquirers of this run (SQLite's write lock already does)
            db.one("SELECT id FROM runs WHERE id = ?" + db.row_lock, (run_id,))
        row = db.one(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        )
        if row is not None and not _lease_is_stale(*row[1:]):
            raise LeaseHeld(_held_message(run_id, *row))
        token = uuid.uuid4().hex
        db.execute(
            "INSERT INTO run_leases (run_id, token, holder, pid, host, "
            "acquired_at, heartbeat_unix_s, stale_after_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET token = excluded.token, "
            "holder = excluded.holder, pid = excluded.pid, host = excluded.host, "
            "acquired_at = excluded.acquired_at, heartbeat_unix_s = excluded.heartbeat_unix_s, "
            "stale_after_s = excluded.stale_after_s",
            (
                run_id,
                token,
                holder,
                os.getpid(),
                socket.gethostname(),
                _now(),
                time.time(),
                float(stale_after_s),
            ),
        )
        self._leases[run_id] = token

    def release_lease(self, run_id: int) -> None:
        """Give the run's lease back (best effort: a full disk leaves a stale row)."""
        token = self._leases.pop(run_id, None)
        if token is None:
            return
        with contextlib.suppress(*self.database.errors), self._write() as db:
            db.execute("DELETE FROM run_leases WHERE run_id = ? AND token = ?", (run_id, token))

    def heartbeat(self, run_id: int) -> None:
        """Say the lease holder is alive (no-op without a lease); ``LeaseHeld`` if it was lost."""
        token = self._leases.get(run_id)
        if token is None:
            return
        with self._write() as db:
            self._check_lease(db, run_id)
            db.execute(
                "UPDATE run_leases SET heartbeat_unix_s = ? WHERE run_id = ? AND token = ?",
                (time.time(), run_id, token),
            )

    def _check_lease(self, db: Database, run_id: int) -> None:
        token = self._leases.get(run_id)
        if token is None:
            return
        row = db.one(
            "SELECT token, holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?" + db.row_lock,
            (run_id,),
        )
        if row is None or row[0] != token:
            self._leases.pop(run_id, None)
            taken = f" to {_held_message(run_id, *row[1:])}" if row is not None else ""
            raise LeaseHeld(f"this measurer lost its lease on run {run_id}{taken}")

    def lease_holder(self, run_id: int) -> Mapping[str, object] | None:
        """The current lease row of a run (None when nobody holds it)."""
        row = self.database.one(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        )
        if row is None:
            return None
        return dict(
            zip(("holder", "pid", "host", "heartbeat_unix_s", "stale_after_s"), row, strict=True)
        )

    def add_bursts(
        self,
        *,
        run_id: int,
        model_sha256: str,
        config: Mapping[str, object],
        pair: int,
        bursts: Sequence[tuple[int, str, float | None, Sequence[float]]],
    ) -> None:
        """Record one side's bursts of one process pair: (position, side, start, samples_ms)."""
        key = config_key(config)
        rows = [
            (run_id, model_sha256, key, pair, position, side, start, len(samples),
             json.dumps([float(v) for v in samples]))
            for position, side, start, samples in bursts
        ]  # fmt: skip
        with self._write() as db:
            try:
                db.executemany(
                    "INSERT INTO bursts (run_id, model_sha256, config_key, pair, "
                    "position, side, start_unix, n_samples, samples) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, model_sha256, config_key, pair, position) "
                    "DO UPDATE SET side = excluded.side, start_unix = excluded.start_unix, "
                    "n_samples = excluded.n_samples, samples = excluded.samples",
                    rows,
                )
            except db.errors as exc:
                if db.is_foreign_key_error(exc):
                    raise self._no_run(run_id) from None
                raise

    def bursts(self, run_id: int) -> list[dict[str, Any]]:
        """A run's bursts in measuring order: run_id, model_sha256, config_key, pair,
        position, side, start_unix, samples_ms."""
        query = (
            "SELECT run_id, model_sha256, config_key, pair, position, side, start_unix, samples "
            "FROM bursts WHERE run_id = ? ORDER BY model_sha256, config_key, pair, position"
        )
        names = (
            "run_id", "model_sha256", "config_key", "pair", "position", "side", "start_unix"
        )  # fmt: skip
        out: list[dict[str, Any]] = []
        for row in self.database.execute(query, (run_id,)):
            record: dict[str, Any] = dict(zip(names, row[:7], strict=True))
            record["samples_ms"] = [float(v) for v in json.loads(row[7])]
            out.append(record)
        return out

    # -- reading ---------------------------------------------------------------------------

    def completed_keys(
        self, run_id: int, *, include_failed: bool = True
    ) -> set[tuple[str, str, int]]:
        """(model_sha256, config_key, trial) already recorded for a run, for resume.

        ``include_failed=False`` leaves failed trials out, so a resume retries them.
        """
        query = "SELECT model_sha256, config_key, trial FROM measurements WHERE run_id = ?"
        if not include_failed:
            query += " AND status = 'ok'"
        return {(str(a), str(b), int(c)) for a, b, c in self.database.execute(query, (run_id,))}

    def _no_run(self, run_id: int | str) -> ResultsError:
        return ResultsError(
            f"no run {run_id} in {self.path}; `mnbench results --list` lists the runs"
        )

    def resolve_run_id(self, spec: str | int | None) -> int:
        """A run id from ``None``/"latest" (newest), a number, or a run label (newest match)."""
        newest = self.database.one("SELECT MAX(id) FROM runs")[0]
        if newest is None:
            raise ResultsError(f"{self.path} holds no runs yet; measure with `mnbench run`")
        if spec is None or (isinstance(spec, str) and spec.strip().lower() == "latest"):
            return int(newest)
        if isinstance(spec, int) or spec.strip().isdigit():
            run_id = int(spec)
            if run_id > 2**63 - 1:  # beyond the database's integers: no such run
                raise self._no_run(str(spec).strip()[:24])
            if self.database.one("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                return run_id
            raise self._no_run(run_id)
        row = self.database.one("SELECT MAX(id) FROM runs WHERE label = ?", (spec.strip(),))
        if row[0] is None:
            raise ResultsError(
                f"no run {spec.strip()!r} in {self.path} (give a run id, a label or 'latest'); "
                "`mnbench results --list` lists the runs"
            )
        return int(row[0])

    _RUN_COLUMNS: Final = (
        "SELECT r.id, r.label, r.created_at, r.finished_at, r.status, r.device, "
        "r.device_kind, r.device_facts, r.config, r.harness_version, r.runtime_version, "
        "(SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id), "
        "(SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id AND m.status = 'failed'), "
    )

    @property
    def has_campaigns(self) -> bool:
        """Whether the runs carry their campaign (a file below version 6 opened read-only
        does not, until it is written once)."""
        return self._schema_version() >= CAMPAIGN_VERSION

    @property
    def _campaign_column(self) -> str:
        return "r.campaign" if self.has_campaigns else "NULL"

    @property
    def _run_query(self) -> str:
        """Runs with their lease (a version-1 file opened read-only has no lease table)."""
        columns = self._RUN_COLUMNS + self._campaign_column + ", "
        if "run_leases" not in self.database.tables():
            return columns + "NULL, NULL, NULL, NULL FROM runs r"
        return (
            columns + "l.pid, l.host, l.heartbeat_unix_s, l.stale_after_s "
            "FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id"
        )

    @staticmethod
    def _run_record(row: Sequence[Any]) -> RunRecord:
        status = cast(RunStatus, row[4])
        # "running" is only true while a live process holds the lease: a harness killed
        # outright, or one that could not write its status on a full disk, stopped the run.
        if status == "running" and (row[14] is None or _lease_is_stale(*row[14:18])):
            status = "interrupted"
        return RunRecord(
            id=int(row[0]),
            label=row[1],
            created_at=row[2],
            finished_at=row[3],
            status=status,
            device=row[5],
            device_kind=row[6],
            device_facts=json.loads(row[7]),
            config=json.loads(row[8]),
            harness_version=row[9],
            runtime_version=row[10],
            measurements=int(row[11]),
            failed_measurements=int(row[12]),
            campaign=row[13],
        )

    def get_run(self, run_id: int) -> RunRecord:
        row = self.database.one(self._run_query + " WHERE r.id = ?", (run_id,))
        if row is None:
            raise self._no_run(run_id)
        return self._run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """All runs, oldest first."""
        rows = self.database.execute(self._run_query + " ORDER BY r.id")
        return [self._run_record(row) for row in rows]

    def campaign_run_ids(self, campaign: str) -> list[int]:
        """The runs of a lab campaign, oldest first; refuses a campaign with none."""
        if not self.has_campaigns:
            raise ResultsError(
                f"{self.path} has schema version {self._schema_version()}, before runs carried "
                f"their campaign (version {CAMPAIGN_VERSION}); upgrade it by writing to it once "
                "(e.g. `mnbench lab status --db ...`), or select its runs with --run"
            )
        rows = self.database.execute(
            "SELECT id FROM runs WHERE campaign = ? ORDER BY id", (campaign,)
        ).fetchall()
        if not rows:
            known = self.campaigns()
            listed = f" (it has {', '.join(map(repr, known))})" if known else " (it has none)"
            raise ResultsError(
                f"no campaign {campaign!r} in {self.path}{listed}; `mnbench results --list` "
                "shows each run's campaign"
            )
        return [int(row[0]) for row in rows]

    def campaigns(self) -> list[str]:
        """Every campaign with runs, oldest first."""
        if not self.has_campaigns:
            return []
        rows = self.database.execute(
            "SELECT campaign FROM runs WHERE campaign IS NOT NULL GROUP BY campaign "
            "ORDER BY MIN(id)"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def measurement_rows(self, run_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Measurements joined with their run and model, one dict per row, in a stable order
        (run, model name, model, configuration, trial); the input of ``results.views``."""
        query = (
            "SELECT m.id, m.run_id, m.model_sha256, m.config_key, m.threads, m.trial, "
            "m.status, m.reason, m.created_at, m.document, "
            f"r.label, {self._campaign_column} AS campaign, r.device, r.device_kind, "
            "r.runtime_version AS run_runtime_version, "
            "md.name, md.alpha, md.resolution, md.variant, md.kernel, md.precision, md.macs, "
            "md.params, md.weight_bytes, md.peak_activation_bytes, md.file_bytes "
            "FROM measurements m JOIN runs r ON r.id = m.run_id "
            "LEFT JOIN models md ON md.sha256 = m.model_sha256"
        )
        parameters: list[int] = []
        if run_ids is not None:
            ids = [int(run_id) for run_id in run_ids]
            if not ids:
                return []
            query += f" WHERE m.run_id IN ({', '.join('?' for _ in ids)})"
            parameters = ids
        query += (
            " ORDER BY m.run_id, md.name NULLS FIRST, m.model_sha256, m.config_key, m.trial, m.id"
        )
        return self.database.rows(query, parameters)

    def measurement_records(
        self, run_ids: Sequence[int] | None = None
    ) -> list[tuple[int, Measurement]]:
        """(measurement id, record) of every stored document, in the frames' order; the raw
        document stays in the store (and in ``Measurement.document``)."""
        return [
            (int(row["id"]), Measurement.from_document(views._document(row)))
            for row in self.measurement_rows(run_ids)
            if row["document"]
        ]

    # -- analysis views (results.views over this store's rows) ------------------------------

    def runs_frame(self) -> pd.DataFrame:
        """``results.views.runs_frame`` of every run."""
        return views.runs_frame(self.list_runs())

    def measurements_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """``results.views.measurements_frame``: one row per measurement (trial)."""
        return views.measurements_frame(self.measurement_rows(run_ids))

    def results_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """``results.views.results_frame``: one row per run × model × configuration."""
        return views.results_frame(self.measurement_rows(run_ids))

    def probes_frame(
        self, run_ids: Sequence[int] | None = None, results: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """``results.views.probes_frame``; ``results``: the ``results_frame(run_ids)`` the
        caller already holds (aggregating bootstraps every cell, so a report computes it
        once)."""
        if results is None:
            results = self.results_frame(run_ids)
        variants = results["variant"].astype(object).fillna("").astype(str)
        probes = results[variants.str.startswith("probe-")]
        cards = self.model_costs(list(probes["sha256"]))
        limits = self._run_limits(sorted({int(r) for r in probes["run_id"]}))
        return views.probes_frame(results, cards, limits)

    def profiles_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """``results.views.profiles_frame``: per-layer times from per-node profiles."""
        rows = [row for row in self.measurement_rows(run_ids) if row["status"] == "ok"]
        cards = self.model_costs([row["model_sha256"] for row in rows])
        return views.profiles_frame(rows, cards)

    # -- latency models --------------------------------------------------------------------

    def add_latency_model(
        self,
        *,
        device: str,
        runtime_version: str,
        threads: int,
        precision: str,
        run_ids: Sequence[int],
        model_json: str,
    ) -> int:
        """Store one fitted latency model (``harness.predict.latency_model``) and return its id."""
        with self._write() as db:
            row = db.one(
                "INSERT INTO latency_models (created_at, device, runtime_version, threads, "
                "precision, run_ids, model) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    _now(),
                    device,
                    runtime_version,
                    threads,
                    precision,
                    json.dumps(sorted({int(r) for r in run_ids})),
                    model_json,
                ),
            )
        return int(row[0])

    def latest_latency_model(
        self, *, device: str, threads: int, precision: str, runtime_version: str | None = None
    ) -> tuple[int, str, tuple[int, ...], str] | None:
        """The newest fitted latency model of this scope (any runtime version unless one is
        given) as (id, runtime version, training run ids, model JSON), or None."""
        query = (
            "SELECT id, runtime_version, run_ids, model FROM latency_models "
            "WHERE device = ? AND threads = ? AND precision = ?"
        )
        parameters: list[object] = [device, threads, precision]
        if runtime_version is not None:
            query += " AND runtime_version = ?"
            parameters.append(runtime_version)
        row = self.database.one(query + " ORDER BY id DESC LIMIT 1", parameters)
        if row is None:
            return None
        return int(row[0]), str(row[1]), tuple(int(r) for r in json.loads(row[2])), str(row[3])

    # -- per-layer facts -------------------------------------------------------------------

    def model_costs(self, sha256s: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The stored cost cards (``ModelRecord.cost``) of these models; absent ones left out."""
        wanted = sorted({str(s) for s in sha256s})
        if not wanted:
            return {}
        rows = self.database.execute(
            f"SELECT sha256, cost FROM models WHERE sha256 IN ({', '.join('?' for _ in wanted)})",
            wanted,
        )
        cards: dict[str, Mapping[str, Any]] = {}
        for sha, text in rows:
            if text:
                card = json.loads(text)
                if isinstance(card, Mapping):
                    cards[str(sha)] = card
        return cards

    def _run_limits(self, run_ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
        limits: dict[int, Mapping[str, Any]] = {}
        for run_id in run_ids:
            facts = self.get_run(int(run_id)).device_facts
            limits[int(run_id)] = views._mapping(views._mapping(facts).get("limits"))
        return limits
