"""The results store: the one object callers hold over a results database, and its frames.

``Store`` joins the store's concerns, each in its own module: the connection, schema
version and write transaction (``results.connection``), run leases (``results.leases``),
runs (``results.runs``), models, measurements and bursts (``results.measurements``) and
fitted latency models (``results.latency_models``); the rows they read back are
``results.rows``, the schema and its migrations ``results.schema``, and the database
server behind a small connection object ``results.backend`` (SQLite by default: stdlib
sqlite3 in WAL mode). This module owns the frames the store hands out, each
``results.views`` over the rows it reads. Sources: docs/architecture.md (a versioned
schema with migrations); asv (a schema version with upgrade steps, files from a newer
version refused); the runner's JSON document, schema ``mnbench.runner/1``, stored verbatim.

Concurrency: every write is one explicit transaction of the backend (SQLite's ``BEGIN
IMMEDIATE`` with a ``busy_timeout``), so two sweeps writing at once wait for each other
instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from results import views
from results.connection import DB_ENV_VAR, DEFAULT_DB_NAME, default_db_path
from results.latency_models import LatencyModels
from results.leases import LeaseHeld
from results.measurements import Measurements
from results.rows import (
    MeasurementStatus,
    ModelRecord,
    RunRecord,
    RunStatus,
    as_mapping,
    config_key,
)
from results.runs import Runs
from results.schema import MIGRATIONS, READER_OPTIONAL, SCHEMA_VERSION, Migration
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


class Store(Runs, Measurements, LatencyModels):
    """An open results database; use as a context manager or call ``close()``."""

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

    def _run_limits(self, run_ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
        """The measured ceilings (device facts' ``limits``) of these runs."""
        limits: dict[int, Mapping[str, Any]] = {}
        for run_id in run_ids:
            facts = self.get_run(int(run_id)).device_facts
            limits[int(run_id)] = as_mapping(as_mapping(facts).get("limits"))
        return limits
