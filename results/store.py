"""The results store: one SQLite file holding runs, models and measurements.

Owns the schema (``MIGRATIONS``, ``SCHEMA_VERSION``), opening and upgrading a database,
writing runs and measurements, resume keys, and reading everything back as pandas frames.
Sources: docs/architecture.md (stdlib sqlite3 in WAL mode; each measurement commits on
its own so an interrupted sweep loses at most the one in flight; a versioned schema with
migrations); asv (a schema version with upgrade steps, files from a newer version
refused); the runner's JSON document, schema ``mnbench.runner/1``, stored verbatim.

pandas and the statistics (scipy) are imported only by the methods that build frames, so a
sweep that only writes starts fast.

Concurrency: connections run in autocommit mode and every write is one explicit
``BEGIN IMMEDIATE`` transaction, with a ``busy_timeout``, so two sweeps writing the same
file at once wait for each other instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args
from urllib.parse import quote

from results.errors import ResultsError
from results.record import Measurement

if TYPE_CHECKING:
    import pandas as pd

    from results.stats import Summary

RunStatus = Literal["running", "complete", "interrupted", "failed"]
MeasurementStatus = Literal["ok", "failed"]
Migration = str | Callable[[sqlite3.Connection], None]

DB_ENV_VAR: Final = "MNBENCH_DB"
DEFAULT_DB_NAME: Final = "mnbench.sqlite"
BUSY_TIMEOUT_S: Final = 60.0
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"

_SCHEMA_V1: Final = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted', 'failed')),
    device TEXT NOT NULL,
    device_kind TEXT NOT NULL,
    device_facts TEXT NOT NULL,
    config TEXT NOT NULL,
    harness_version TEXT NOT NULL,
    runtime_version TEXT
);
CREATE TABLE models (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    alpha REAL,
    resolution INTEGER,
    variant TEXT,
    kernel INTEGER,
    precision TEXT,
    macs INTEGER,
    params INTEGER,
    weight_bytes INTEGER,
    peak_activation_bytes INTEGER,
    file_bytes INTEGER,
    cost TEXT
);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    model_sha256 TEXT NOT NULL,
    config_key TEXT NOT NULL,
    threads INTEGER,
    trial INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason TEXT,
    created_at TEXT NOT NULL,
    document TEXT,
    n_samples INTEGER,
    p50_ms REAL,
    UNIQUE (run_id, model_sha256, config_key, trial)
);
CREATE INDEX measurements_by_model ON measurements (model_sha256);
"""

_RUN_LEASES: Final = """
CREATE TABLE run_leases (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    token TEXT NOT NULL,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat_unix_s REAL NOT NULL,
    stale_after_s REAL NOT NULL
);
"""
"""Who is measuring a run now (see ``Store.lease``): one row per leased run."""


_BURSTS: Final = """
CREATE TABLE bursts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    model_sha256 TEXT NOT NULL,
    config_key TEXT NOT NULL,
    pair INTEGER NOT NULL,
    position INTEGER NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('A', 'B')),
    start_unix REAL,
    n_samples INTEGER NOT NULL,
    samples TEXT NOT NULL,
    UNIQUE (run_id, model_sha256, config_key, pair, position)
);
CREATE INDEX bursts_by_run ON bursts (run_id, model_sha256, config_key, pair);
"""
"""Interleaved bursts of ``mnbench regress``: each row is one side's burst inside a process
pair (``position`` orders the bursts of both sides of the pair; ``side`` A = baseline)."""


_LATENCY_MODELS: Final = """
CREATE TABLE latency_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    device TEXT NOT NULL,
    runtime_version TEXT NOT NULL,
    threads INTEGER NOT NULL,
    precision TEXT NOT NULL,
    run_ids TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE INDEX latency_models_by_scope ON latency_models (device, threads, precision);
"""
"""Fitted latency models (``harness.predict.latency_model``): one row per fit, for one device ×
runtime ×
threads × precision; ``run_ids`` (JSON list) are the runs whose measurements it was fitted
from (refitting from them gives the same model), ``model`` its JSON."""

MIGRATIONS: Final[list[Migration]] = [_SCHEMA_V1, _BURSTS, _LATENCY_MODELS, _RUN_LEASES]
"""Step i upgrades a database from schema version i to i + 1 (version 0 = empty file).

A step is SQL (one or more statements) or a function given the open connection; every
step runs inside the same transaction as the version bump. Append steps, never edit one.
"""
SCHEMA_VERSION: Final = len(MIGRATIONS)
READER_OPTIONAL: Final[tuple[Migration, ...]] = (_RUN_LEASES,)
"""Steps a read-only open does without: a file that lacks only these is read as it is
(the lease table; readers treat a missing one as no leases)."""

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "run_id",
    "device",
    "runtime_version",
    "name",
    "alpha",
    "resolution",
    "variant",
    "kernel",
    "precision",
    "threads",
    "trials",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "ci_reason",
    "spread",
    "within_ci_low_ms",
    "within_ci_high_ms",
    "samples",
    "peak_rss_bytes",
    "load_ms",
    "first_ms",
    "macs",
    "params",
    "status",
    "flags",
    "unreliable",
)
"""The first columns of ``results_frame``, in this order; reports and the CLI rely on them.

``ci_low_ms``/``ci_high_ms`` are the cross-trial 95 % CI of the median (``results.trials``;
none below 3 trials, ``ci_reason`` says why), ``spread`` the between-trial spread; the pooled
within-process interval is ``within_ci_low_ms``/``within_ci_high_ms``. ``flags`` and
``unreliable`` are ``results.reliability``'s."""
RESULT_EXTRA_COLUMNS: Final[tuple[str, ...]] = (
    "label",
    "device_kind",
    "sha256",
    "config_key",
    "cpus",
    "max_ms",
    "cv",
    "outliers_low",
    "outliers_high",
    "failed_trials",
    "reasons",
    "peak_rss_load_bytes",
    "weight_bytes",
    "peak_activation_bytes",
    "file_bytes",
    "trial_medians_ms",
    "hottest_c",
    "other_load",
    "cooldown_s",
    "trial_reference_ms",
    "device_state",
    "pin_command",
)
_INT_COLUMNS: Final = (
    "run_id",
    "resolution",
    "kernel",
    "threads",
    "trials",
    "samples",
    "peak_rss_bytes",
    "macs",
    "params",
    "outliers_low",
    "outliers_high",
    "failed_trials",
    "peak_rss_load_bytes",
    "weight_bytes",
    "peak_activation_bytes",
    "file_bytes",
)
_FLOAT_COLUMNS: Final = (
    "alpha",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "spread",
    "within_ci_low_ms",
    "within_ci_high_ms",
    "load_ms",
    "first_ms",
    "max_ms",
    "cv",
    "hottest_c",
    "other_load",
    "cooldown_s",
)


class LeaseHeld(ResultsError):
    """Another live process is measuring this run (exit code 2)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lease_is_stale(pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float) -> bool:
    if time.time() - float(heartbeat_unix_s) > float(stale_after_s):
        return True
    return host == socket.gethostname() and (int(pid) == os.getpid() or not _pid_alive(int(pid)))


def _held_message(
    run_id: int, holder: str, pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float
) -> str:
    age_s = max(0.0, time.time() - float(heartbeat_unix_s))
    return (
        f"run {run_id} is being measured by {holder} (pid {pid} on {host}, last heartbeat "
        f"{age_s:.0f} s ago); wait for it to finish or stop it, a lease older than "
        f"{float(stale_after_s):.0f} s is taken over"
    )


def default_db_path() -> Path:
    """``$MNBENCH_DB`` when set, else ``./mnbench.sqlite``."""
    configured = os.environ.get(DB_ENV_VAR, "").strip()
    return Path(configured).expanduser() if configured else Path(DEFAULT_DB_NAME)


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


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n\t;"):
        statements.append(pending.strip())
    return statements


def _writable(path: Path) -> bool:
    """Whether SQLite can write ``path``: the file, and its directory (the WAL and shared
    memory files live beside it). A read-only mount says no even to root."""
    directory = path.parent if str(path.parent) else Path(".")
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection to a file SQLite may not write: ``mode=ro``, or where it cannot even
    create the WAL's shared-memory file (a read-only directory or mount) ``immutable=1``."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
    return sqlite3.connect(
        uri + "&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
    )


def _not_mnbench(path: Path, why: str) -> ResultsError:
    return ResultsError(
        f"{path} is not an mnbench database ({why}); pass another --db or move it away"
    )


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before sqlite3 touches it (it is never rewritten)."""
    if path.is_dir():
        raise _not_mnbench(path, "it is a directory")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ResultsError(
            f"cannot read {path}: {exc.strerror}; check the path and permissions"
        ) from None
    if head and head != _SQLITE_MAGIC:
        raise _not_mnbench(path, "not an SQLite file")


class Store:
    """An open results database; use as a context manager or call ``close()``."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
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
        db_path = Path(path) if path is not None else default_db_path()
        exists = db_path.exists()
        if exists:
            _check_header(db_path)
        elif not create or readonly:
            raise ResultsError(
                f"no results database at {db_path}; measure with `mnbench run` or pass --db"
            )
        else:
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ResultsError(
                    f"cannot create {db_path.parent} for the database ({exc.strerror}); "
                    "pass a writable --db"
                ) from None
        writable = _writable(db_path)
        if not readonly and not writable and not exists:
            raise ResultsError(
                f"cannot create {db_path}: its directory is read-only; pass a --db in a "
                "writable directory"
            )
        if not readonly and not writable:
            raise ResultsError(
                f"{db_path} is read-only (file or directory not writable) and this command "
                "writes results; copy it somewhere writable or pass another --db"
            )
        try:
            if readonly and not writable:
                connection = _connect_readonly(db_path)
            else:  # a reader where it could write issues no write, and leaves no -wal/-shm
                connection = sqlite3.connect(
                    str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None
                )
        except sqlite3.Error as exc:
            raise ResultsError(
                f"cannot open {db_path} ({exc}); check the path and permissions"
            ) from None
        store = cls(db_path, connection)
        try:
            if readonly:
                store._prepare_readonly(list(migrations))
            else:
                store._prepare(list(migrations))
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare_readonly(self, migrations: list[Migration]) -> None:
        supported = len(migrations)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            version = self._schema_version()
        except sqlite3.DatabaseError as exc:
            raise _not_mnbench(self.path, f"sqlite: {exc}") from None
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
        db = self._db
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA foreign_keys = ON")
            # WAL + NORMAL: a killed process loses no committed measurement; only a power
            # cut can drop the last commits, and it never corrupts the file.
            db.execute("PRAGMA synchronous = NORMAL")
            version = self._schema_version()
            if version != len(migrations):
                self._check_version(version, len(migrations))
                with self._write():
                    # Another process may have upgraded it between the read and the lock.
                    version = self._schema_version()
                    self._check_version(version, len(migrations))
                    for step in migrations[version:]:
                        if callable(step):
                            step(db)
                        else:
                            for statement in _split_sql(step):
                                db.execute(statement)
                    if version < len(migrations):
                        db.execute(
                            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                            (str(len(migrations)),),
                        )
                        if version == 0:
                            db.execute(
                                "INSERT OR REPLACE INTO meta (key, value) VALUES ('created_at', ?)",
                                (_now(),),
                            )
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise ResultsError(
                    f"cannot switch {self.path} to WAL mode (journal_mode={mode}); "
                    "put the database on a local file system"
                )
        except sqlite3.DatabaseError as exc:
            raise _not_mnbench(self.path, f"sqlite: {exc}") from None

    def _schema_version(self) -> int:
        tables = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables:
            return 0
        if "meta" not in tables:
            raise _not_mnbench(self.path, "an SQLite database without an mnbench meta table")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise _not_mnbench(self.path, "its meta table has no schema_version")
        return int(row[0])

    def _check_version(self, found: int, supported: int) -> None:
        if found > supported:
            raise ResultsError(
                f"{self.path} was written by a newer mnbench (schema version {found}, this "
                f"one reads up to {supported}); upgrade mnbench or pass another --db"
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue on the lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        for run_id in list(self._leases):
            self.release_lease(run_id)
        self._db.close()

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
        """Record a new sweep (status ``running``) and return its id.

        With ``lease_holder`` the run is leased to this store in the same transaction, so no
        ``--resume`` can take it before its sweep starts (see ``lease``).
        """
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (label, created_at, status, device, device_kind, "
                "device_facts, config, harness_version, runtime_version) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    label,
                    _now(),
                    device,
                    device_kind,
                    json.dumps(dict(device_facts)),
                    json.dumps(dict(config)),
                    harness_version,
                    runtime_version,
                ),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
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
        values = [getattr(record, column) for column in columns[:-1]]
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
        if status not in get_args(MeasurementStatus):
            raise ValueError(f"unknown measurement status {status!r}")
        key = config_key(config)
        threads = config.get("threads")
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
            key,
            threads if isinstance(threads, int) else None,
            trial,
            status,
            reason,
            _now(),
            None if document is None else json.dumps(dict(document)),
            n_samples,
            p50_ms,
        )
        with self._write() as db:
            self._check_lease(db, run_id)
            try:
                db.execute(
                    "INSERT INTO measurements (run_id, model_sha256, config_key, threads, "
                    "trial, status, reason, created_at, document, n_samples, p50_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, model_sha256, config_key, trial) DO UPDATE SET "
                    "threads = excluded.threads, status = excluded.status, "
                    "reason = excluded.reason, created_at = excluded.created_at, "
                    "document = excluded.document, n_samples = excluded.n_samples, "
                    "p50_ms = excluded.p50_ms",
                    row,
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise self._no_run(run_id) from None
                raise
            found = db.execute(
                "SELECT id FROM measurements WHERE run_id = ? AND model_sha256 = ? "
                "AND config_key = ? AND trial = ?",
                (run_id, model_sha256, key, trial),
            ).fetchone()
        return int(found[0])

    # -- leases ----------------------------------------------------------------------------

    @contextmanager
    def lease(self, run_id: int, holder: str, stale_after_s: float) -> Iterator[None]:
        """Hold the run's measuring lease for the block; ``LeaseHeld`` if someone else has it.

        A lease records holder, pid, host and a heartbeat (``heartbeat``). It is taken over
        when its holder is a dead process on this host or its heartbeat is older than the
        holder's own ``stale_after_s``; the check and the take-over are one ``BEGIN
        IMMEDIATE`` transaction, so of two measurers starting at once exactly one wins. A
        lease this store already holds (``create_run(lease_holder=...)``) is adopted and
        released at the end of the block.
        """
        if run_id not in self._leases:
            with self._write() as db:
                self._acquire(db, run_id, holder, stale_after_s)
        try:
            yield
        finally:
            self.release_lease(run_id)

    def _acquire(
        self, db: sqlite3.Connection, run_id: int, holder: str, stale_after_s: float
    ) -> None:
        row = db.execute(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is not None and not _lease_is_stale(*row[1:]):
            raise LeaseHeld(_held_message(run_id, *row))
        token = uuid.uuid4().hex
        db.execute(
            "INSERT OR REPLACE INTO run_leases (run_id, token, holder, pid, host, "
            "acquired_at, heartbeat_unix_s, stale_after_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        with contextlib.suppress(sqlite3.Error), self._write() as db:
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

    def _check_lease(self, db: sqlite3.Connection, run_id: int) -> None:
        token = self._leases.get(run_id)
        if token is None:
            return
        row = db.execute(
            "SELECT token, holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None or row[0] != token:
            self._leases.pop(run_id, None)
            taken = f" to {_held_message(run_id, *row[1:])}" if row is not None else ""
            raise LeaseHeld(f"this measurer lost its lease on run {run_id}{taken}")

    def lease_holder(self, run_id: int) -> Mapping[str, object] | None:
        """The current lease row of a run (None when nobody holds it)."""
        row = self._db.execute(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
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
                    "INSERT OR REPLACE INTO bursts (run_id, model_sha256, config_key, pair, "
                    "position, side, start_unix, n_samples, samples) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
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
        for row in self._db.execute(query, (run_id,)):
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
        return {(str(a), str(b), int(c)) for a, b, c in self._db.execute(query, (run_id,))}

    def _no_run(self, run_id: int | str) -> ResultsError:
        return ResultsError(
            f"no run {run_id} in {self.path}; `mnbench results --list` lists the runs"
        )

    def resolve_run_id(self, spec: str | int | None) -> int:
        """A run id from ``None``/"latest" (newest), a number, or a run label (newest match)."""
        newest = self._db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
        if newest is None:
            raise ResultsError(f"{self.path} holds no runs yet; measure with `mnbench run`")
        if spec is None or (isinstance(spec, str) and spec.strip().lower() == "latest"):
            return int(newest)
        if isinstance(spec, int) or spec.strip().isdigit():
            run_id = int(spec)
            if run_id > 2**63 - 1:  # beyond SQLite's integers: no such run
                raise self._no_run(str(spec).strip()[:24])
            if self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                return run_id
            raise self._no_run(run_id)
        row = self._db.execute(
            "SELECT MAX(id) FROM runs WHERE label = ?", (spec.strip(),)
        ).fetchone()
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
    def _run_query(self) -> str:
        """Runs with their lease (a version-1 file opened read-only has no lease table)."""
        has_leases = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run_leases'"
        ).fetchone()
        if has_leases is None:
            return self._RUN_COLUMNS + "NULL, NULL, NULL, NULL FROM runs r"
        return (
            self._RUN_COLUMNS + "l.pid, l.host, l.heartbeat_unix_s, l.stale_after_s "
            "FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id"
        )

    @staticmethod
    def _run_record(row: Sequence[Any]) -> RunRecord:
        status = cast(RunStatus, row[4])
        # "running" is only true while a live process holds the lease: a harness killed
        # outright, or one that could not write its status on a full disk, stopped the run.
        if status == "running" and (row[13] is None or _lease_is_stale(*row[13:17])):
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
        )

    def get_run(self, run_id: int) -> RunRecord:
        row = self._db.execute(self._run_query + " WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._no_run(run_id)
        return self._run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """All runs, oldest first."""
        rows = self._db.execute(self._run_query + " ORDER BY r.id")
        return [self._run_record(row) for row in rows]

    def runs_frame(self) -> pd.DataFrame:
        """One row per run: its columns, the parsed facts/config as dicts, and flattened facts.

        Top-level scalar device facts also get their own ``facts.KEY`` columns.
        """
        import pandas as pd

        records: list[dict[str, object]] = []
        for run in self.list_runs():
            record: dict[str, object] = {
                "run_id": run.id,
                "label": run.label,
                "created_at": run.created_at,
                "finished_at": run.finished_at,
                "status": run.status,
                "device": run.device,
                "device_kind": run.device_kind,
                "harness_version": run.harness_version,
                "runtime_version": run.runtime_version,
                "measurements": run.measurements,
                "failed_measurements": run.failed_measurements,
                "device_facts": dict(run.device_facts),
                "config": dict(run.config),
            }
            for key, value in run.device_facts.items():
                if value is None or isinstance(value, (str, int, float, bool)):
                    record[f"facts.{key}"] = value
            records.append(record)
        columns = [
            "run_id",
            "label",
            "created_at",
            "finished_at",
            "status",
            "device",
            "device_kind",
            "harness_version",
            "runtime_version",
            "measurements",
            "failed_measurements",
            "device_facts",
            "config",
        ]
        frame: pd.DataFrame = pd.DataFrame(records, columns=_union_columns(columns, records))
        return frame

    def _measurement_rows(self, run_ids: Sequence[int] | None) -> list[sqlite3.Row]:
        query = (
            "SELECT m.id, m.run_id, m.model_sha256, m.config_key, m.threads, m.trial, "
            "m.status, m.reason, m.created_at, m.document, "
            "r.label, r.device, r.device_kind, r.runtime_version AS run_runtime_version, "
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
        query += " ORDER BY m.run_id, md.name, m.model_sha256, m.config_key, m.trial, m.id"
        self._db.row_factory = sqlite3.Row
        try:
            return list(self._db.execute(query, parameters))
        finally:
            self._db.row_factory = None

    def measurement_records(
        self, run_ids: Sequence[int] | None = None
    ) -> list[tuple[int, Measurement]]:
        """(measurement id, record) of every stored document, in the frames' order; the raw
        document stays in the store (and in ``Measurement.document``)."""
        return [
            (int(row["id"]), Measurement.from_document(_document(row)))
            for row in self._measurement_rows(run_ids)
            if row["document"]
        ]

    def measurements_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per measurement (trial): status, reason, its own summary, raw samples."""
        records: list[dict[str, object]] = []
        for row in self._measurement_rows(run_ids):
            document = _document(row)
            record = Measurement.from_document(document)
            samples = list(record.samples_ms)
            summary = _trial_summary(record)
            timings = record.timings
            memory = record.memory
            records.append(
                {
                    "id": row["id"],
                    "run_id": row["run_id"],
                    "device": row["device"],
                    "label": row["label"],
                    "sha256": row["model_sha256"],
                    "name": _model_name(row, document),
                    "config_key": row["config_key"],
                    "threads": row["threads"],
                    "cpus": _cpus(row["config_key"]),
                    "trial": row["trial"],
                    "status": row["status"],
                    "reason": row["reason"],
                    "created_at": row["created_at"],
                    "runtime_version": record.runtime_version,
                    "stop_reason": record.stop_reason,
                    "samples": summary.n,
                    "p50_ms": summary.median_ms,
                    "p90_ms": summary.p90_ms,
                    "p99_ms": summary.p99_ms,
                    "mean_ms": summary.mean_ms,
                    "std_ms": summary.std_ms,
                    "min_ms": summary.min_ms,
                    "max_ms": summary.max_ms,
                    "cv": summary.cv,
                    "ci_low_ms": summary.ci_low_ms,
                    "ci_high_ms": summary.ci_high_ms,
                    "outliers_low": summary.outliers_low,
                    "outliers_high": summary.outliers_high,
                    "flags": ",".join(summary.flags),
                    "load_ms": _number(timings.get("session_create_ms")),
                    "first_ms": _number(timings.get("first_inference_ms")),
                    "peak_rss_bytes": _integer(memory.get("peak_rss_end_bytes")),
                    "peak_rss_load_bytes": _integer(memory.get("peak_rss_after_load_bytes")),
                    "samples_ms": samples,
                }
            )
        columns = [
            "id",
            "run_id",
            "device",
            "label",
            "sha256",
            "name",
            "config_key",
            "threads",
            "cpus",
            "trial",
            "status",
            "reason",
            "created_at",
            "runtime_version",
            "stop_reason",
            "samples",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "mean_ms",
            "std_ms",
            "min_ms",
            "max_ms",
            "cv",
            "ci_low_ms",
            "ci_high_ms",
            "outliers_low",
            "outliers_high",
            "flags",
            "load_ms",
            "first_ms",
            "peak_rss_bytes",
            "peak_rss_load_bytes",
            "samples_ms",
        ]
        return _typed_frame(records, columns)

    def results_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per run × model × configuration, aggregated over its trials.

        Latency statistics pool the raw samples of the ok trials (a document without samples
        contributes its ``reported_ms``; when no trial has samples, each reported statistic
        is the median over trials). ``status`` is ok / partial / failed by how many trials
        were ok; ``few_samples`` compares the pooled count with the trials' summed
        ``settings.min_samples``. Columns: ``RESULT_COLUMNS`` then ``RESULT_EXTRA_COLUMNS``;
        integer columns use pandas' nullable ``Int64``, missing floats are NaN, and
        ``trial_medians_ms`` holds a list per cell.
        """
        groups: dict[tuple[int, str, str], list[sqlite3.Row]] = {}
        for row in self._measurement_rows(run_ids):
            groups.setdefault((row["run_id"], row["model_sha256"], row["config_key"]), []).append(
                row
            )
        records = sorted((_aggregate(rows) for rows in groups.values()), key=_grid_order)
        return _typed_frame(records, [*RESULT_COLUMNS, *RESULT_EXTRA_COLUMNS])

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
            cursor = db.execute(
                "INSERT INTO latency_models (created_at, device, runtime_version, threads, "
                "precision, run_ids, model) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            model_id = cursor.lastrowid
        assert model_id is not None
        return model_id

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
        row = self._db.execute(query + " ORDER BY id DESC LIMIT 1", parameters).fetchone()
        if row is None:
            return None
        return int(row[0]), str(row[1]), tuple(int(r) for r in json.loads(row[2])), str(row[3])

    # -- per-layer views -------------------------------------------------------------------

    def model_costs(self, sha256s: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The stored cost cards (``ModelRecord.cost``) of these models; absent ones left out."""
        wanted = sorted({str(s) for s in sha256s})
        if not wanted:
            return {}
        rows = self._db.execute(
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
            limits[int(run_id)] = _mapping(_mapping(facts).get("limits"))
        return limits

    def probes_frame(
        self, run_ids: Sequence[int] | None = None, results: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """One row per run × layer probe × configuration (``harness.model.probes``): the columns of
        ``results_frame`` plus the probe's facts from its cost card (``role, block,
        in_channels, out_channels, in_size, out_size, stride``), the arithmetic intensity of
        its convs and the run's measured ceilings (``peak_gflop_s``, ``bandwidth_gb_s`` from
        the device facts' ``limits``, NaN when not measured).

        ``results``: the ``results_frame(run_ids)`` the caller already holds (aggregating
        bootstraps every cell, so a report computes it once)."""
        import pandas as pd

        if results is None:
            results = self.results_frame(run_ids)
        variants = results["variant"].astype(object).fillna("").astype(str)
        results = results[variants.str.startswith("probe-")].reset_index(drop=True)
        cards = self.model_costs(list(results["sha256"]))
        limits = self._run_limits(sorted({int(r) for r in results["run_id"]}))
        extra: list[dict[str, object]] = []
        for row in results.to_dict("records"):
            card = cards.get(str(row["sha256"]), {})
            probe = _mapping(card.get("probe"))
            layers = _mapping(card.get("layers")).values()
            flops = sum(2 * (_integer(_mapping(x).get("macs")) or 0) for x in layers)
            moved = sum(
                _integer(_mapping(x).get("bytes")) or 0
                for x in layers
                if (_integer(_mapping(x).get("macs")) or 0) > 0
            )
            run_limits = limits.get(int(row["run_id"]), {})
            extra.append(
                {
                    "role": probe.get("role", str(row["variant"])[len("probe-") :]),
                    "block": _integer(probe.get("block")),
                    "in_channels": _integer(probe.get("in_channels")),
                    "out_channels": _integer(probe.get("out_channels")),
                    "in_size": _integer(probe.get("in_size")),
                    "out_size": _integer(probe.get("out_size")),
                    "stride": _integer(probe.get("stride")),
                    "intensity_flop_per_byte": flops / moved if moved else math.nan,
                    "peak_gflop_s": _number(run_limits.get("peak_gflop_s")),
                    "bandwidth_gb_s": _number(run_limits.get("bandwidth_gb_s")),
                }
            )
        columns = [
            "role",
            "block",
            "in_channels",
            "out_channels",
            "in_size",
            "out_size",
            "stride",
            "intensity_flop_per_byte",
            "peak_gflop_s",
            "bandwidth_gb_s",
        ]
        frame: pd.DataFrame = pd.concat(
            [results, pd.DataFrame(extra, columns=columns, index=results.index)], axis=1
        )
        for column in columns[1:7]:
            frame[column] = frame[column].astype("Int64")
        for column in columns[7:]:
            frame[column] = frame[column].astype("float64")
        return frame

    def profiles_frame(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Per-layer times from the runner's per-node profiles (``mnbench run --profile``).

        One row per run × model × configuration × layer: ``run_id, device, name, layer, kind
        (stem/depthwise/pointwise/standard/fc/other, as harness.model.cost), time_ms (median over
        the trials of the layer's summed per-node medians: per inference), macs, flops_per_s``
        then ``sha256, threads, trials, nodes, op_types``. Profiled nodes map to layers by
        the longest graph-node-name prefix (``harness.model.layers``) using the model's stored cost
        card, or for our generated models the architecture table; nodes that map to no layer
        are kept as rows with layer ``unassigned`` (one per node), never dropped.
        """
        from harness.model.layers import UNASSIGNED, profile_layers, spec_card

        rows = [row for row in self._measurement_rows(run_ids) if row["status"] == "ok"]
        cards = self.model_costs([row["model_sha256"] for row in rows])
        spec_cards: dict[str, Mapping[str, Any]] = {}
        groups: dict[tuple[int, str, str, str], dict[str, Any]] = {}
        for row in rows:
            profile = Measurement.from_document(_document(row)).profile
            if not profile:
                continue
            sha = str(row["model_sha256"])
            card = cards.get(sha)
            if card is None or "nodes" not in card:
                if sha not in spec_cards:
                    spec_cards[sha] = _spec_card_of(row, spec_card)
                card = spec_cards[sha]
            for layer in profile_layers(profile, card):
                node_key = layer["layer"] if layer["layer"] != UNASSIGNED else layer["nodes"][0]
                key = (int(row["run_id"]), sha, str(row["config_key"]), str(node_key))
                entry = groups.setdefault(
                    key,
                    {
                        "run_id": int(row["run_id"]),
                        "device": row["device"],
                        "name": _model_name(row, {}),
                        "layer": layer["layer"],
                        "kind": layer["kind"],
                        "times_us": [],
                        "macs": layer["macs"],
                        "sha256": sha,
                        "threads": row["threads"],
                        "nodes": [],
                        "op_types": [],
                    },
                )
                entry["times_us"].append(layer["time_us"])
                for node, op_type in zip(layer["nodes"], layer["op_types"], strict=True):
                    if node not in entry["nodes"]:
                        entry["nodes"].append(node)
                        entry["op_types"].append(op_type)
        records: list[dict[str, object]] = []
        for entry in groups.values():
            times_us = entry.pop("times_us")
            time_ms = float(statistics.median(times_us)) / 1000.0
            macs = int(entry["macs"])
            nodes = entry.pop("nodes")
            op_types = entry.pop("op_types")
            records.append(
                {
                    **entry,
                    "time_ms": time_ms,
                    "flops_per_s": 2.0 * macs / (time_ms / 1000.0) if time_ms > 0 else math.nan,
                    "trials": len(times_us),
                    "nodes": ",".join(nodes),
                    "op_types": ",".join(op_types),
                }
            )
        columns = [
            "run_id",
            "device",
            "name",
            "layer",
            "kind",
            "time_ms",
            "macs",
            "flops_per_s",
            "sha256",
            "threads",
            "trials",
            "nodes",
            "op_types",
        ]
        import pandas as pd

        frame: pd.DataFrame = pd.DataFrame(records, columns=columns)
        for column in ("run_id", "macs", "threads", "trials"):
            frame[column] = frame[column].astype("Int64")
        for column in ("time_ms", "flops_per_s"):
            frame[column] = frame[column].astype("float64")
        return frame


# -- aggregation helpers -------------------------------------------------------------------


def _union_columns(first: list[str], records: list[dict[str, object]]) -> list[str]:
    columns = list(first)
    for record in records:
        columns.extend(key for key in record if key not in columns)
    return columns


def _mapping(value: object) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _document(row: sqlite3.Row) -> Mapping[str, Any]:
    text = row["document"]
    return _mapping(json.loads(text)) if text else {}


def _trial_summary(record: Measurement) -> Summary:
    from results.stats import summarize, summarize_reported

    if record.samples_ms:
        return summarize(record.samples_ms, record.min_samples)
    return summarize_reported(record.reported_ms, n=record.iterations or 0)


def _model_name(row: sqlite3.Row, document: Mapping[str, Any]) -> str:
    if row["name"]:
        return str(row["name"])
    model_path = _mapping(document.get("model")).get("path")
    if isinstance(model_path, str) and model_path:
        return PurePath(model_path.replace("\\", "/")).stem
    return str(row["model_sha256"])[:12]


def _spec_card_of(row: sqlite3.Row, make: Callable[..., Mapping[str, Any]]) -> Mapping[str, Any]:
    """The card of one of our generated models from its row, or an empty card."""
    alpha, resolution, variant, kernel = (
        row["alpha"],
        row["resolution"],
        row["variant"],
        row["kernel"],
    )
    if alpha is None or resolution is None or variant not in ("separable", "standard"):
        return {}
    return make(float(alpha), int(resolution), str(variant), int(kernel or 3))


def _cpus(key: str) -> str | None:
    cpus = _mapping(json.loads(key)).get("cpus")
    if isinstance(cpus, list):
        return ",".join(str(cpu) for cpu in cpus)
    return None if cpus is None else str(cpus)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _maximum(values: Sequence[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _aggregate(rows: list[sqlite3.Row]) -> dict[str, object]:
    from results.stats import summarize, summarize_reported

    first = rows[0]
    documents = [_document(row) for row in rows]
    ok = [doc for row, doc in zip(rows, documents, strict=True) if row["status"] == "ok"]
    records = [Measurement.from_document(doc) for doc in ok]
    pooled: list[float] = []
    requested = 0
    for record in records:
        pooled.extend(record.samples_ms)
        requested += record.min_samples or 0
    trial_summaries = [_trial_summary(record) for record in records]
    summary: Summary
    if pooled:
        summary = summarize(pooled, requested or None)
    else:
        reported: dict[str, float] = {}
        for key, attribute in (
            ("p50", "median_ms"),
            ("p90", "p90_ms"),
            ("p99", "p99_ms"),
            ("mean", "mean_ms"),
            ("min", "min_ms"),
            ("max", "max_ms"),
        ):
            value = _median([getattr(s, attribute) for s in trial_summaries])
            if value is not None:
                reported[key] = value
        summary = summarize_reported(reported, n=sum(s.n for s in trial_summaries))
    timings = [_mapping(doc.get("timings")) for doc in ok]
    memory = [_mapping(doc.get("memory")) for doc in ok]
    versions = sorted(
        {str(v) for doc in ok if (v := _mapping(doc.get("runtime")).get("version")) is not None}
    )
    runtime_version = ",".join(versions) if versions else first["run_runtime_version"]
    failed = len(rows) - len(ok)
    status = "ok" if failed == 0 else ("failed" if not ok else "partial")
    reasons = sorted(
        {str(row["reason"]) for row in rows if row["status"] == "failed" and row["reason"]}
    )
    model_document = documents[0] if documents else {}
    from results.reliability import cell_reliability

    trust = cell_reliability(ok, trial_summaries, summary.flags)
    return {
        "run_id": first["run_id"],
        "device": first["device"],
        "runtime_version": runtime_version,
        "name": _model_name(first, model_document),
        "alpha": first["alpha"],
        "resolution": first["resolution"],
        "variant": first["variant"],
        "kernel": first["kernel"],
        "precision": first["precision"],
        "threads": first["threads"],
        "trials": len(rows),
        "p50_ms": summary.median_ms,
        "p90_ms": summary.p90_ms,
        "p99_ms": summary.p99_ms,
        "mean_ms": summary.mean_ms,
        "std_ms": summary.std_ms,
        "min_ms": summary.min_ms,
        "ci_low_ms": trust["ci_low_ms"],
        "ci_high_ms": trust["ci_high_ms"],
        "ci_reason": trust["ci_reason"],
        "spread": trust["spread"],
        "within_ci_low_ms": summary.ci_low_ms,
        "within_ci_high_ms": summary.ci_high_ms,
        "samples": summary.n,
        "peak_rss_bytes": _maximum([_integer(m.get("peak_rss_end_bytes")) for m in memory]),
        "load_ms": _median([_number(t.get("session_create_ms")) for t in timings]),
        "first_ms": _median([_number(t.get("first_inference_ms")) for t in timings]),
        "macs": first["macs"],
        "params": first["params"],
        "status": status,
        "label": first["label"],
        "device_kind": first["device_kind"],
        "sha256": first["model_sha256"],
        "config_key": first["config_key"],
        "cpus": _cpus(first["config_key"]),
        "max_ms": summary.max_ms,
        "cv": summary.cv,
        "flags": trust["flags"] if ok else "",
        "unreliable": trust["unreliable"] if ok else "",
        "outliers_low": summary.outliers_low,
        "outliers_high": summary.outliers_high,
        "failed_trials": failed,
        "reasons": "; ".join(reasons),
        "peak_rss_load_bytes": _maximum(
            [_integer(m.get("peak_rss_after_load_bytes")) for m in memory]
        ),
        "weight_bytes": first["weight_bytes"],
        "peak_activation_bytes": first["peak_activation_bytes"],
        "file_bytes": first["file_bytes"]
        if first["file_bytes"] is not None
        else _integer(_mapping(model_document.get("model")).get("file_bytes")),
        "trial_medians_ms": [s.median_ms for s in trial_summaries if s.median_ms is not None],
        "hottest_c": trust["hottest_c"],
        "other_load": trust["other_load"],
        "cooldown_s": trust["cooldown_s"],
        "trial_reference_ms": trust["trial_reference_ms"],
        "device_state": trust["device_state"],
        "pin_command": trust["pin_command"],
    }


def _grid_order(record: Mapping[str, object]) -> tuple[object, ...]:
    """Run, then the grid (alpha, resolution; foreign models last), then name and threads."""

    def number(key: str) -> tuple[bool, float]:
        value = record.get(key)
        return (True, 0.0) if not isinstance(value, (int, float)) else (False, float(value))

    return (
        record["run_id"],
        str(record.get("variant") or "~"),
        number("alpha"),
        number("resolution"),
        str(record["name"]),
        number("threads"),
        str(record["config_key"]),
    )


def _typed_frame(records: list[dict[str, object]], columns: list[str]) -> pd.DataFrame:
    """A frame with stable dtypes even when empty: Int64 / float64 / object columns."""
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(records, columns=columns)
    for column in columns:
        if column in _INT_COLUMNS or column in ("id", "trial"):
            frame[column] = frame[column].astype("Int64")
        elif column in _FLOAT_COLUMNS:
            frame[column] = frame[column].astype("float64")
        elif column in ("samples_ms", "trial_medians_ms", "trial_reference_ms"):
            frame[column] = frame[column].astype(object)
    return frame
