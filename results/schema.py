"""The results database's schema: the DDL of every version and the migrations between them.

Owns ``MIGRATIONS`` (step i upgrades version i to i + 1; version 0 is an empty database),
``SCHEMA_VERSION`` and ``READER_OPTIONAL``. The DDL is written once, in SQLite's dialect; a
backend (``results.backend``) translates it for its server, so SQLite and PostgreSQL
databases go through the same versions. Append steps, never edit one: existing databases
are identified by the version they reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

Migration = str | Callable[[Any], None]
"""SQL (one or more statements) or a function given the backend's open DB-API connection."""

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
"""Fitted latency models (``harness.predict.estimator``): one row per fit, for one
device × runtime × threads × precision; ``run_ids`` (JSON list) are the runs whose
measurements it was fitted from (refitting from them gives the same model), ``model`` its
JSON."""

_LAB: Final = """
CREATE TABLE lab_devices (
    device TEXT PRIMARY KEY,
    token TEXT,
    holder TEXT,
    host TEXT,
    pid INTEGER,
    campaign TEXT,
    acquired_at TEXT,
    heartbeat_unix_s REAL,
    lease_s REAL
);
CREATE TABLE work_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign TEXT NOT NULL,
    device TEXT NOT NULL REFERENCES lab_devices (device),
    run_id INTEGER NOT NULL REFERENCES runs (id),
    model_sha256 TEXT NOT NULL,
    config_key TEXT NOT NULL,
    trial INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done')),
    token TEXT,
    holder TEXT,
    host TEXT,
    pid INTEGER,
    claimed_at TEXT,
    heartbeat_unix_s REAL,
    lease_s REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    measurement_id INTEGER REFERENCES measurements (id),
    finished_at TEXT,
    UNIQUE (run_id, model_sha256, config_key, trial)
);
CREATE INDEX work_items_next ON work_items (device, state, campaign, id);
"""
"""The lab's work queue (``results.queue``): a campaign's plan as one row per measurement
(``work_items``, claimed under a lease and done when its measurement commits) and the
devices workers hold (``lab_devices``: who measures on a device now, with a heartbeat)."""


def _run_campaigns(connection: Any) -> None:
    """Version 6: the campaign a run belongs to as a column of ``runs`` (indexed), filled for
    the runs already there from their stored configuration (``campaign_of``)."""
    import sqlite3

    mark = "?" if isinstance(connection, sqlite3.Connection) else "%s"
    connection.execute("ALTER TABLE runs ADD COLUMN campaign TEXT")
    connection.execute("CREATE INDEX runs_by_campaign ON runs (campaign, id)")
    rows = connection.execute("SELECT id, config FROM runs").fetchall()
    for run_id, config in rows:
        campaign = campaign_of(config)
        if campaign is not None:
            connection.execute(
                f"UPDATE runs SET campaign = {mark} WHERE id = {mark}", (campaign, run_id)
            )


def campaign_of(config: object) -> str | None:
    """The campaign named by a run's configuration (a mapping or its JSON text): the one
    rule by which ``runs.campaign`` is written, filled in and copied."""
    import json

    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError:
            return None
    value = config.get("campaign") if isinstance(config, dict) else None
    return value if isinstance(value, str) and value else None


MIGRATIONS: Final[list[Migration]] = [
    _SCHEMA_V1,
    _BURSTS,
    _LATENCY_MODELS,
    _RUN_LEASES,
    _LAB,
    _run_campaigns,
]
"""Step i upgrades a database from schema version i to i + 1 (version 0 = empty file).

A step is SQL (one or more statements) or a function given the open connection; every
step runs inside the same transaction as the version bump. Append steps, never edit one.
"""
SCHEMA_VERSION: Final = len(MIGRATIONS)
READER_OPTIONAL: Final[tuple[Migration, ...]] = (_RUN_LEASES, _LAB, _run_campaigns)
"""Steps a read-only open does without: a file that lacks only these is read as it is
(the lease table, the lab's queue, the runs' campaign column; readers treat a missing one
as no leases, no items, no campaigns)."""
CAMPAIGN_VERSION: Final = MIGRATIONS.index(_run_campaigns) + 1
"""The first schema version whose runs carry their campaign."""


def split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement, the
    tokenizer of the dialect the DDL is written in)."""
    import sqlite3

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
