"""The store's connection to its database: where it is, opening it, its schema version.

Owns the default location (``$MNBENCH_DB`` or ``./mnbench.sqlite``), opening a database
and bringing its schema up to this mnbench's version (the steps are ``results.schema``,
the server behind them ``results.backend``), refusing files of a newer or an unknown
schema, the write transaction every writer takes, and closing. Each concern of the store
(``results.leases``, ``results.runs``, ``results.measurements``,
``results.latency_models``) extends ``Connection``; ``results.store.Store`` joins them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from results.backend import Database, connect, not_mnbench, parse_location
from results.errors import ResultsError
from results.rows import timestamp
from results.schema import CAMPAIGN_VERSION, MIGRATIONS, READER_OPTIONAL, Migration

__all__ = ["DB_ENV_VAR", "DEFAULT_DB_NAME", "Connection", "default_db_path"]

DB_ENV_VAR: Final = "MNBENCH_DB"
DEFAULT_DB_NAME: Final = "mnbench.sqlite"

_Opened = TypeVar("_Opened", bound="Connection")


def default_db_path() -> Path | str:
    """``$MNBENCH_DB`` when set (a file path, or a ``postgresql://`` URL), else
    ``./mnbench.sqlite``."""
    configured = os.environ.get(DB_ENV_VAR, "").strip()
    return parse_location(configured) if configured else Path(DEFAULT_DB_NAME)


class Connection:
    """An open results database; use as a context manager or call ``close()``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.path = database.location
        """What messages name: the SQLite file, or the server URL without a password."""

    @classmethod
    def open(
        cls: type[_Opened],
        path: Path | str | None = None,
        *,
        create: bool = True,
        readonly: bool = False,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> _Opened:
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
                            self._set_meta("created_at", timestamp())
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

    @property
    def schema_version(self) -> int:
        return self._schema_version()

    @property
    def has_campaigns(self) -> bool:
        """Whether the runs carry their campaign (a file below version 6 opened read-only
        does not, until it is written once)."""
        return self._schema_version() >= CAMPAIGN_VERSION

    @property
    def _campaign_column(self) -> str:
        return "r.campaign" if self.has_campaigns else "NULL"

    def missing_run(self, run_id: int | str) -> ResultsError:
        """The error for a run this database does not hold."""
        return ResultsError(
            f"no run {run_id} in {self.path}; `mnbench results --list` lists the runs"
        )

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction, taken up front so concurrent writers queue on the lock;
        the database to write through inside it (``insert_measurement``, ``results.queue``)."""
        with self.database.transaction():
            yield self.database

    def close(self) -> None:
        self.database.close()

    def __enter__(self: _Opened) -> _Opened:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
