"""Runs in the results database (``runs``): recorded, given their status, found and read back.

Owns creating a run (leased to its sweep in the same transaction), its status and runtime
version, naming a run by id, label or ``latest``, the lab campaigns runs belong to, and
reading runs back as ``RunRecord`` with their measurement counts; a ``running`` run whose
lease is stale reads ``interrupted``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast, get_args

from mobilenet.validate import MAX_TEXT_CHARS
from results.errors import ResultsError
from results.leases import Leases, lease_is_stale
from results.rows import RunRecord, RunStatus, load_stored_json, stored_data_error, timestamp
from results.schema import CAMPAIGN_VERSION, campaign_of

__all__ = ["Runs"]

_RUN_COLUMNS: Final = (
    "SELECT r.id, r.label, r.created_at, r.finished_at, r.status, r.device, "
    "r.device_kind, r.device_facts, r.config, r.harness_version, r.runtime_version, "
    "(SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id), "
    "(SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id AND m.status = 'failed'), "
)


_STATUSES: Final = get_args(RunStatus)
_DEVICE_KINDS: Final = ("local", "ssh", "adb")


def _run_record(row: Sequence[Any]) -> RunRecord:
    """One ``runs`` row read back, every column held to what the harness writes (a database
    is a file anyone can craft): one line naming the run and the field otherwise."""
    if isinstance(row[0], bool) or not isinstance(row[0], int):
        raise stored_data_error("a run", "run id")
    where = f"run {row[0]}"
    label = row[1]
    if label is not None and (not isinstance(label, str) or len(label) > MAX_TEXT_CHARS):
        raise stored_data_error(where, "label")
    if row[4] not in _STATUSES:
        raise stored_data_error(where, "status")
    if not _short_text(row[5], 4096):
        raise stored_data_error(where, "device")
    if row[6] not in _DEVICE_KINDS:
        raise stored_data_error(where, "device kind")
    for column, what in ((2, "creation time"), (9, "harness version")):
        if not _short_text(row[column], MAX_TEXT_CHARS):
            raise stored_data_error(where, what)
    for column, what in ((3, "finish time"), (10, "runtime version"), (13, "campaign")):
        if row[column] is not None and not _short_text(row[column], MAX_TEXT_CHARS):
            raise stored_data_error(where, what)
    facts = load_stored_json(row[7], where, "device facts")
    config = load_stored_json(row[8], where, "configuration")
    if not isinstance(facts, dict):
        raise stored_data_error(where, "device facts")
    if not isinstance(config, dict):
        raise stored_data_error(where, "configuration")
    status = cast(RunStatus, row[4])
    # "running" is only true while a live process holds the lease: a harness killed
    # outright, or one that could not write its status on a full disk, stopped the run.
    if status == "running" and (row[14] is None or lease_is_stale(*row[14:18])):
        status = "interrupted"
    return RunRecord(
        id=row[0],
        label=label,
        created_at=row[2],
        finished_at=row[3],
        status=status,
        device=row[5],
        device_kind=row[6],
        device_facts=facts,
        config=config,
        harness_version=row[9],
        runtime_version=row[10],
        measurements=int(row[11]),
        failed_measurements=int(row[12]),
        campaign=row[13],
    )


def _short_text(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


class Runs(Leases):
    """The runs of the database: written, resolved and read back."""

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
            timestamp(),
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
        with self.transaction() as db:
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
        finished = None if status == "running" else timestamp()
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, finished, run_id),
            )
            if cursor.rowcount != 1:
                raise self.missing_run(run_id)

    def set_runtime_version(self, run_id: int, version: str) -> None:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET runtime_version = ? WHERE id = ?", (version, run_id)
            )
            if cursor.rowcount != 1:
                raise self.missing_run(run_id)

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
                raise self.missing_run(str(spec).strip()[:24])
            if self.database.one("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                return run_id
            raise self.missing_run(run_id)
        row = self.database.one("SELECT MAX(id) FROM runs WHERE label = ?", (spec.strip(),))
        if row[0] is None:
            raise ResultsError(
                f"no run {spec.strip()!r} in {self.path} (give a run id, a label or 'latest'); "
                "`mnbench results --list` lists the runs"
            )
        return int(row[0])

    @property
    def _run_query(self) -> str:
        """Runs with their lease (a version-1 file opened read-only has no lease table)."""
        columns = _RUN_COLUMNS + self._campaign_column + ", "
        if "run_leases" not in self.database.tables():
            return columns + "NULL, NULL, NULL, NULL FROM runs r"
        return (
            columns + "l.pid, l.host, l.heartbeat_unix_s, l.stale_after_s "
            "FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id"
        )

    def get_run(self, run_id: int) -> RunRecord:
        row = self.database.one(self._run_query + " WHERE r.id = ?", (run_id,))
        if row is None:
            raise self.missing_run(run_id)
        return _run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """All runs, oldest first."""
        rows = self.database.execute(self._run_query + " ORDER BY r.id")
        return [_run_record(row) for row in rows]

    def campaign_run_ids(self, campaign: str) -> list[int]:
        """The runs of a lab campaign, oldest first; refuses a campaign with none."""
        if not self.has_campaigns:
            raise ResultsError(
                f"{self.path} has schema version {self.schema_version}, before runs carried "
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
