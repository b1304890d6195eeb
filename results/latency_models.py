"""Fitted latency models in the results database (``latency_models``).

Owns storing a fitted model (``harness.predict.latency_model`` writes its JSON) with its
scope (device, runtime version, threads, precision) and training runs, and finding the
newest one of a scope; what a model says is the predictor's, not the store's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from results.connection import Connection
from results.rows import load_stored_json, stored_data_error, timestamp

__all__ = ["LatencyModels"]


class LatencyModels(Connection):
    """The fitted latency models of the database."""

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
        with self.transaction() as db:
            row = db.one(
                "INSERT INTO latency_models (created_at, device, runtime_version, threads, "
                "precision, run_ids, model) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    timestamp(),
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
        where = f"latency model {row[0]}"
        run_ids = load_stored_json(row[2], where, "training run ids")
        if (
            isinstance(row[0], bool)
            or not isinstance(row[0], int)
            or not isinstance(run_ids, list)
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in run_ids)
            or not isinstance(row[3], str)
        ):
            raise stored_data_error(where, "row")
        return row[0], str(row[1]), tuple(run_ids), row[3]
