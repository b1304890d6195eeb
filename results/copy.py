"""Copying runs between stores (SQLite ↔ PostgreSQL): a laptop's results into the lab, and back.

A run is the same run in both stores when its creation time, device and stored
configuration are equal (run ids differ between databases, those three never change), so
copying again finds the copies it made and refreshes them instead of adding runs: the copy
is idempotent. A run's models, measurements (keyed by model × configuration × trial, as in
the store) and bursts go with it, each run in one transaction of the destination; the
source is opened read-only. A run's campaign goes with it (``runs.campaign``); leases,
work items and fitted latency models stay where they are (they describe the source's own
workers and fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from results.schema import campaign_of
from results.store import Store

_RUN_FIELDS = (
    "label", "created_at", "finished_at", "status", "device", "device_kind",
    "device_facts", "config", "harness_version", "runtime_version",
)  # fmt: skip
_MODEL_FIELDS = (
    "sha256", "name", "alpha", "resolution", "variant", "kernel", "precision", "macs",
    "params", "weight_bytes", "peak_activation_bytes", "file_bytes", "cost",
)  # fmt: skip
_MEASUREMENT_FIELDS = (
    "model_sha256", "config_key", "threads", "trial", "status", "reason", "created_at",
    "document", "n_samples", "p50_ms",
)  # fmt: skip
_BURST_FIELDS = (
    "model_sha256", "config_key", "pair", "position", "side", "start_unix", "n_samples",
    "samples",
)  # fmt: skip


@dataclass(frozen=True)
class CopiedRun:
    source_id: int
    target_id: int
    created: bool
    """False when the destination already had the run (refreshed in place)."""
    measurements: int


def _upsert(table: str, fields: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{f} = excluded.{f}" for f in fields if f not in key)
    return (
        f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' for _ in fields)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def copy_runs(source: Store, target: Store, run_ids: Sequence[int]) -> list[CopiedRun]:
    """Copy these runs of ``source`` (with their models, measurements, bursts) into
    ``target``; runs already there are refreshed, none is duplicated."""
    src = source.database
    copied: list[CopiedRun] = []
    has_bursts = "bursts" in src.tables()
    for run_id in run_ids:
        run = src.one(f"SELECT {', '.join(_RUN_FIELDS)} FROM runs WHERE id = ?", (run_id,))
        if run is None:
            raise source.missing_run(run_id)
        measurements = src.execute(
            f"SELECT {', '.join(_MEASUREMENT_FIELDS)} FROM measurements WHERE run_id = ? "
            "ORDER BY id",
            (run_id,),
        ).fetchall()
        shas = sorted({str(row[0]) for row in measurements})
        models = (
            src.execute(
                f"SELECT {', '.join(_MODEL_FIELDS)} FROM models "
                f"WHERE sha256 IN ({', '.join('?' for _ in shas)})",
                shas,
            ).fetchall()
            if shas
            else []
        )
        bursts = (
            src.execute(
                f"SELECT {', '.join(_BURST_FIELDS)} FROM bursts WHERE run_id = ? ORDER BY id",
                (run_id,),
            ).fetchall()
            if has_bursts
            else []
        )
        values = dict(zip(_RUN_FIELDS, run, strict=True))
        campaign = campaign_of(values["config"])  # as the source's own column was filled
        with target.transaction() as db:
            found = db.one(
                "SELECT id FROM runs WHERE created_at = ? AND device = ? AND config = ?"
                + db.row_lock,
                (values["created_at"], values["device"], values["config"]),
            )
            if found is None:
                row = db.one(
                    f"INSERT INTO runs ({', '.join(_RUN_FIELDS)}, campaign) "
                    f"VALUES ({', '.join('?' for _ in _RUN_FIELDS)}, ?) RETURNING id",
                    [*run, campaign],
                )
                target_id = int(row[0])
            else:
                target_id = int(found[0])
                db.execute(
                    "UPDATE runs SET label = ?, finished_at = ?, status = ?, device_facts = ?, "
                    "runtime_version = ?, campaign = ? WHERE id = ?",
                    (values["label"], values["finished_at"], values["status"],
                     values["device_facts"], values["runtime_version"], campaign, target_id),
                )  # fmt: skip
            if models:
                db.executemany(_upsert("models", _MODEL_FIELDS, ("sha256",)), models)
            if measurements:
                db.executemany(
                    _upsert(
                        "measurements",
                        ("run_id", *_MEASUREMENT_FIELDS),
                        ("run_id", "model_sha256", "config_key", "trial"),
                    ),
                    [(target_id, *row) for row in measurements],
                )
            if bursts:
                db.executemany(
                    _upsert(
                        "bursts",
                        ("run_id", *_BURST_FIELDS),
                        ("run_id", "model_sha256", "config_key", "pair", "position"),
                    ),
                    [(target_id, *row) for row in bursts],
                )
        copied.append(CopiedRun(int(run_id), target_id, found is None, len(measurements)))
    return copied


def campaign_runs(store: Store, campaign: str) -> list[int]:
    """The runs a campaign planned, oldest first (read from their configuration, the rule
    ``runs.campaign`` is filled by, so a source below schema version 6 is read too)."""
    return [run.id for run in store.list_runs() if campaign_of(run.config) == campaign]
