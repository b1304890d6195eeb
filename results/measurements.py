"""Models, measurements and bursts in the results database, written and read back.

Owns recording a model (``models``, keyed by the file's sha256, with its cost card), one
model × configuration × trial with the runner's document stored verbatim
(``measurements``; each commits on its own, so an interrupted sweep loses at most the one
in flight, and recording it again replaces it), a process pair's bursts (``bursts``), the
keys a resumed sweep skips, and the joined rows ``results.views`` computes frames from.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from results.backend import Database
from results.leases import Leases
from results.record import Measurement
from results.rows import (
    MAX_SAMPLES,
    MeasurementStatus,
    ModelRecord,
    as_number,
    config_key,
    decode_document,
    load_stored_json,
    stored_data_error,
    timestamp,
)

__all__ = ["Measurements"]

_MODEL_COLUMNS = (
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


class Measurements(Leases):
    """The models, measurements and bursts of the database."""

    def upsert_model(self, record: ModelRecord) -> None:
        """Insert a model or refresh its row (the sha256 identifies the file)."""
        columns = _MODEL_COLUMNS
        values: list[object] = [getattr(record, column) for column in columns[:-1]]
        values.append(None if record.cost is None else json.dumps(dict(record.cost)))
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns[1:])
        with self.transaction() as db:
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
        with self.transaction() as db:
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
        """``add_measurement`` inside a write transaction the caller holds (``results.queue``
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
            timestamp(),
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
                raise self.missing_run(run_id) from None
            raise
        return int(found[0])

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
        with self.transaction() as db:
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
                    raise self.missing_run(run_id) from None
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
            samples = load_stored_json(row[7], f"run {run_id}", "burst samples")
            if (
                not isinstance(samples, list)
                or len(samples) > MAX_SAMPLES
                or not all(as_number(v) is not None for v in samples)
            ):
                raise stored_data_error(f"run {run_id}", "burst samples")
            record["samples_ms"] = [float(v) for v in samples]
            out.append(record)
        return out

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
            (int(row["id"]), Measurement.from_document(decode_document(row)))
            for row in self.measurement_rows(run_ids)
            if row["document"]
        ]

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
                card = load_stored_json(text, f"model {str(sha)[:12]}", "cost card")
                if isinstance(card, Mapping):
                    cards[str(sha)] = card
        return cards
