"""The seam between the store and a database server: one small connection object per backend.

``Database`` is everything ``results.store`` needs from a server, with the dialect
differences behind it: placeholders (the store writes ``?``), the exclusive write
transaction (SQLite's ``BEGIN IMMEDIATE``; a PostgreSQL transaction whose rows are locked
explicitly), row locks for claiming (``FOR UPDATE SKIP LOCKED``, nothing on SQLite, whose
write transaction already excludes every other writer), the DDL translation of a
migration step, the table listing and how a server's errors read. The SQL the store writes
is otherwise common to both: ``INSERT ... ON CONFLICT ... DO UPDATE``, ``RETURNING id``.

``SQLiteDatabase`` (stdlib sqlite3, WAL, one file) lives here; the PostgreSQL backend in
``results.postgres`` (psycopg) is imported only for a ``postgresql://`` location.
"""

from __future__ import annotations

import abc
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import quote

from mobilenet.files import UnreadableFile, check_openable
from results.errors import ResultsError
from results.schema import Migration, split_sql

BUSY_TIMEOUT_S: Final = 60.0
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")
MAX_LOCATION_CHARS: Final = 4096
"""The longest database path or URL taken (the system's own limit on a path)."""
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class StoreUnavailable(ResultsError):
    """The database server cannot be reached (any more): down, or the connection dropped."""


class Cursor(Protocol):
    """What a query returns (sqlite3 and psycopg cursors both are one)."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any:
        """The DB-API column descriptions (the name first) of the last query."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(abc.ABC):
    """An open connection to one results database (autocommit outside ``transaction``)."""

    dialect: ClassVar[str]
    kind: ClassVar[str]
    """The server's name in messages ("SQLite", "PostgreSQL")."""
    row_lock: ClassVar[str]
    """Appended to a SELECT that reads rows it will update in the same transaction."""
    skip_locked: ClassVar[str]
    """Appended to a SELECT that claims one row among many (work items)."""

    def __init__(self, location: Path | str) -> None:
        self.location = location
        """What messages name: a path, or a URL without its password."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """Run one statement written with ``?`` placeholders."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    @abc.abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; commits at the end of the block, rolls back on error."""
        yield

    @abc.abstractmethod
    def tables(self) -> set[str]:
        """The names of the tables in the database (in its current schema)."""

    @abc.abstractmethod
    def run_step(self, step: Migration) -> None:
        """Apply one migration step inside the current transaction."""

    def lock_schema(self) -> None:  # noqa: B027 (a hook: most backends need nothing)
        """Inside the migration transaction: keep other openers out until it commits."""

    def after_migrations(self) -> None:  # noqa: B027
        """Once the schema is current (SQLite switches to WAL here)."""

    @abc.abstractmethod
    def is_foreign_key_error(self, exc: BaseException) -> bool: ...

    @property
    @abc.abstractmethod
    def errors(self) -> tuple[type[BaseException], ...]:
        """The backend's error classes (``except db.errors``)."""

    @abc.abstractmethod
    def refusal(self, exc: BaseException) -> ResultsError:
        """One line for an error met while opening: what happened and what to do."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """The rows of a query as dicts keyed by column name."""
        cursor = self.execute(sql, params)
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor]


def is_server_url(location: Path | str) -> bool:
    """Whether ``location`` names a database server (``postgresql://...``), not a file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def parse_location(text: str) -> Path | str:
    """A ``--db`` value or ``$MNBENCH_DB``: a server URL kept as text, else a file path.

    Any other ``scheme://`` (``mysql://``, ``POSTGRESQL://``: schemes are matched exactly,
    in lowercase) is refused rather than taken for a file name, and so is a location longer
    than any path the system accepts."""
    text = text.strip()
    if len(text) > MAX_LOCATION_CHARS:
        raise ResultsError(
            f"the database location is {len(text)} characters long; give a path or URL of "
            f"at most {MAX_LOCATION_CHARS}"
        )
    if is_server_url(text):
        return text
    scheme = _SCHEME.match(text)
    if scheme is not None:
        raise ResultsError(
            f"{scheme.group(0)} is not a database mnbench reads; give an SQLite file path "
            "or a postgresql:// URL (the scheme in lowercase)"
        )
    return Path(text).expanduser()


def connect(location: Path | str, *, create: bool, readonly: bool) -> Database:
    """The backend for ``location``: a ``postgresql://`` URL or an SQLite file path."""
    if is_server_url(location):
        from results.postgres import PostgresDatabase

        return PostgresDatabase.connect(str(location), readonly=readonly)
    return SQLiteDatabase.connect(Path(location), create=create, readonly=readonly)


# -- SQLite --------------------------------------------------------------------------------


def not_mnbench(location: Path | str, why: str) -> ResultsError:
    return ResultsError(
        f"{location} is not an mnbench database ({why}); pass another --db or move it away"
    )


def _writable(path: Path) -> bool:
    """Whether SQLite can write ``path``: the file, and its directory (the WAL and shared
    memory files live beside it). A read-only mount says no even to root."""
    directory = path.parent if str(path.parent) else Path(".")
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


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


def _connect_reader(path: Path, writable: bool) -> sqlite3.Connection:
    """A connection for a verb that only reads.

    Where SQLite may not write, ``_connect_readonly``. Where a write-ahead log or a rollback
    journal lies beside the file (a writer running, or one that stopped), ``mode=ro``: the
    reader sees its committed pages but never copies them into the file, rolls a journal
    back, or deletes either. Otherwise an ordinary connection, which creates no log that it
    does not remove again on closing; ``PRAGMA query_only`` keeps every connection from
    writing."""
    if not writable:
        return _connect_readonly(path)
    if _sidecar(path, "-wal").exists() or _sidecar(path, "-journal").exists():
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)


def _guard(connection: sqlite3.Connection, readonly: bool) -> None:
    """What SQLite advises for a database file from elsewhere: check cell sizes while
    reading, run no function a schema names, refuse writes that corrupt (defensive mode,
    where this Python offers it), and for a reader, no write at all."""
    defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    setconfig = getattr(connection, "setconfig", None)
    if defensive is not None and setconfig is not None:
        setconfig(defensive, True)
    connection.execute("PRAGMA cell_size_check = ON")
    connection.execute("PRAGMA trusted_schema = OFF")
    if readonly:
        connection.execute("PRAGMA query_only = 1")


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before sqlite3 touches it (it is never rewritten)."""
    if path.is_dir():
        raise not_mnbench(path, "it is a directory")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ResultsError(
            f"cannot read {path}: {exc.strerror}; check the path and permissions"
        ) from None
    if head and head != _SQLITE_MAGIC:
        raise not_mnbench(path, "not an SQLite file")


def check_file_location(path: Path, flag: str = "--db") -> None:
    """Refuse a database path that is a FIFO, device, socket or directory, or that the
    system cannot look up (a name too long), before anything opens it."""
    try:
        check_openable(path, flag)
    except UnreadableFile as exc:
        raise ResultsError(exc.message) from None


def check_location(location: Path | str, flag: str = "--db") -> None:
    """``check_file_location`` for a file; a server URL is checked when connecting."""
    if not is_server_url(location):
        check_file_location(Path(location), flag)


class SQLiteDatabase(Database):
    """One SQLite file in WAL mode; every write is one ``BEGIN IMMEDIATE`` transaction with a
    ``busy_timeout``, so concurrent writers on one host queue instead of failing."""

    dialect = "sqlite"
    kind = "SQLite"
    row_lock = ""
    skip_locked = ""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        super().__init__(path)
        self.path = path
        self.connection = connection

    @classmethod
    def connect(cls, path: Path, *, create: bool, readonly: bool) -> SQLiteDatabase:
        """``create=False`` refuses a missing file; ``readonly=True`` writes nothing (no
        journal-mode change, and SQLite's read-only or immutable mode where it cannot
        write); a writer on a read-only file, directory or mount is refused up front."""
        check_file_location(path)
        exists = path.exists()
        if exists:
            _check_header(path)
        elif not create or readonly:
            raise ResultsError(
                f"no results database at {path}; measure with `mnbench run` or pass --db"
            )
        elif not path.parent.is_dir():
            raise ResultsError(
                f"cannot create {path}: directory {path.parent} does not exist; create it "
                "first or pass a --db in an existing directory"
            )
        writable = _writable(path)
        if not readonly and not writable and not exists:
            raise ResultsError(
                f"cannot create {path}: its directory is read-only; pass a --db in a "
                "writable directory"
            )
        if not readonly and not writable:
            raise ResultsError(
                f"{path} is read-only (file or directory not writable) and this command "
                "writes results; copy it somewhere writable or pass another --db"
            )
        try:
            if readonly:
                connection = _connect_reader(path, writable)
            else:
                connection = sqlite3.connect(
                    str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None
                )
        except sqlite3.Error as exc:
            raise ResultsError(
                f"cannot open {path} ({exc}); check the path and permissions"
            ) from None
        database = cls(path, connection)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _guard(connection, readonly)
            if not readonly:
                connection.execute("PRAGMA foreign_keys = ON")
                # WAL + NORMAL: a killed process loses no committed measurement; only a power
                # cut can drop the last commits, and it never corrupts the file.
                connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise database.refusal(exc) from None
        return database

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.connection.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Taken up front (``BEGIN IMMEDIATE``) so concurrent writers queue on the lock."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def tables(self) -> set[str]:
        return {
            str(row[0])
            for row in self.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }

    def run_step(self, step: Migration) -> None:
        if callable(step):
            step(self.connection)
            return
        for statement in split_sql(step):
            self.connection.execute(statement)

    def after_migrations(self) -> None:
        mode = self._switch_to_wal()
        if mode is None or str(mode[0]).lower() != "wal":
            raise ResultsError(
                f"cannot switch {self.path} to WAL mode (journal_mode={mode}); "
                "put the database on a local file system"
            )

    def _switch_to_wal(self) -> Any:
        """``PRAGMA journal_mode = WAL``, waiting out other connections as a write would.

        Leaving rollback-journal mode needs the file to itself, and SQLite answers "database
        is locked" at once, without its busy handler, while another process is still reading
        it (two processes creating one database at the same moment). WAL is persistent, so
        once any process has switched the file every later opener finds it done."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay_s = 0.001
        while True:
            mode = self.connection.execute("PRAGMA journal_mode").fetchone()
            if mode is not None and str(mode[0]).lower() == "wal":
                return mode
            try:
                return self.connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.05)

    def is_foreign_key_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc)

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.DatabaseError,)

    def refusal(self, exc: BaseException) -> ResultsError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return ResultsError(
                f"{self.path} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s; "
                "wait for it to finish (or stop it) and run the same command again"
            )
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return ResultsError(
                f"the disk holding {self.path} is full; free some space or pass a --db on "
                "another disk"
            )
        return not_mnbench(self.path, f"sqlite: {exc}")

    def close(self) -> None:
        self.connection.close()
