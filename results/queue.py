"""The lab's work queue in the results database: campaigns as rows, claimed under leases.

A campaign's plan is one ``work_items`` row per measurement (run × model × configuration ×
trial), inserted by ``enqueue``. A worker claims a device (one ``lab_devices`` row: a
device measures one thing at a time, whoever reaches it) and that device's next item in one
transaction; on PostgreSQL both rows are read ``FOR UPDATE SKIP LOCKED``, so claimers on
many hosts never wait on or take each other's rows, and SQLite's ``BEGIN IMMEDIATE`` gives
one host the same guarantee. A claim carries a lease: the worker's heartbeat keeps it, and
an item whose heartbeat is older than its lease is claimed again by the next worker (a host
that died). ``complete`` commits the measurement and marks the item done in one
transaction, and only while the claim is still the worker's own: an item is committed
exactly once, however many workers measured it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from results.errors import ResultsError
from results.rows import MeasurementStatus, config_key, timestamp
from results.store import Store

BUSY: Final = "busy"
"""``claim``: the device is held by another live worker (or its next item is in flight)."""


@dataclass(frozen=True)
class WorkItem:
    """One claimed measurement: which run, model, configuration and trial."""

    id: int
    campaign: str
    device: str
    run_id: int
    model_sha256: str
    config_key: str
    trial: int
    attempts: int
    """How many claims it has had, this one included (above 1: reclaimed)."""


@dataclass(frozen=True)
class DeviceStatus:
    """One device of the lab: who holds it and what is left of its items."""

    device: str
    holder: str | None
    host: str | None
    pid: int | None
    campaign: str | None
    heartbeat_age_s: float | None
    live: bool
    """Held by a worker whose heartbeat is within its lease."""
    pending: int
    claimed: int
    done: int
    failed: int


class Lab:
    """The queue operations of one worker (or of a planner) over an open store."""

    def __init__(self, store: Store, holder: str = "mnbench lab work", lease_s: float = 60.0):
        self.store = store
        self.db = store.database
        self.holder = holder
        self.lease_s = float(lease_s)
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        if "work_items" not in self.db.tables():
            raise ResultsError(
                f"{store.path} has no lab tables (schema version {store.schema_version}); "
                "open it once with this mnbench to upgrade it"
            )

    # -- planning --------------------------------------------------------------------------

    def campaign_exists(self, campaign: str) -> bool:
        return (
            self.db.one("SELECT 1 FROM work_items WHERE campaign = ? LIMIT 1", (campaign,))
            is not None
        )

    def enqueue(
        self, campaign: str, device: str, run_id: int, items: Sequence[tuple[str, str, int]]
    ) -> int:
        """Insert a run's plan, (model sha256, configuration key, trial) in measuring order,
        as pending items; items already queued are left as they are. Returns how many were
        new."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO lab_devices (device) VALUES (?) ON CONFLICT (device) DO NOTHING",
                (device,),
            )
            before = db.one("SELECT COUNT(*) FROM work_items WHERE run_id = ?", (run_id,))[0]
            db.executemany(
                "INSERT INTO work_items (campaign, device, run_id, model_sha256, config_key, "
                "trial, state) VALUES (?, ?, ?, ?, ?, ?, 'pending') "
                "ON CONFLICT (run_id, model_sha256, config_key, trial) DO NOTHING",
                [(campaign, device, run_id, sha, key, trial) for sha, key, trial in items],
            )
            after = db.one("SELECT COUNT(*) FROM work_items WHERE run_id = ?", (run_id,))[0]
        return int(after) - int(before)

    # -- working ---------------------------------------------------------------------------

    def claim(self, device: str, campaign: str | None = None) -> WorkItem | Literal["busy"] | None:
        """The device's next item, claimed for this worker with the device itself; ``BUSY``
        when another live worker holds the device (or holds its last items); None when the
        device has nothing left to measure (in ``campaign``, or in any campaign)."""
        now = time.time()
        scope = "" if campaign is None else " AND campaign = ?"
        scope_args: tuple[object, ...] = () if campaign is None else (campaign,)
        with self.store.transaction() as db:
            held = db.one(
                "SELECT token, heartbeat_unix_s, lease_s FROM lab_devices WHERE device = ?"
                + db.skip_locked,
                (device,),
            )
            if held is None:
                exists = db.one("SELECT 1 FROM lab_devices WHERE device = ?", (device,))
                if exists is None:
                    return None  # no campaign ever planned this device
                return BUSY  # another claimer has the row locked right now
            token, heartbeat, lease = held
            if (
                token not in (None, self.token)
                and heartbeat is not None
                and heartbeat + lease >= now
            ):
                return BUSY
            row = db.one(
                "SELECT id, campaign, run_id, model_sha256, config_key, trial, attempts "
                "FROM work_items WHERE device = ?" + scope + " AND (state = 'pending' OR "
                "(state = 'claimed' AND (token = ? OR heartbeat_unix_s + lease_s < ?))) "
                "ORDER BY id LIMIT 1" + db.skip_locked,
                (device, *scope_args, self.token, now),
            )
            if row is None:
                db.execute(
                    "UPDATE lab_devices SET token = NULL, holder = NULL, host = NULL, pid = NULL, "
                    "heartbeat_unix_s = NULL WHERE device = ? AND token = ?",
                    (device, self.token),
                )
                left = db.one(
                    "SELECT COUNT(*) FROM work_items WHERE device = ?" + scope
                    + " AND state != 'done'",
                    (device, *scope_args),
                )[0]  # fmt: skip
                return BUSY if int(left) else None
            item_id, item_campaign, run_id, sha, key, trial, attempts = row
            db.execute(
                "UPDATE work_items SET state = 'claimed', token = ?, holder = ?, host = ?, "
                "pid = ?, claimed_at = ?, heartbeat_unix_s = ?, lease_s = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                (self.token, self.holder, self.host, self.pid, timestamp(), now, self.lease_s,
                 item_id),
            )  # fmt: skip
            db.execute(
                "UPDATE lab_devices SET token = ?, holder = ?, host = ?, pid = ?, campaign = ?, "
                "acquired_at = ?, heartbeat_unix_s = ?, lease_s = ? WHERE device = ?",
                (self.token, self.holder, self.host, self.pid, item_campaign, timestamp(), now,
                 self.lease_s, device),
            )  # fmt: skip
        return WorkItem(
            int(item_id), str(item_campaign), device, int(run_id), str(sha), str(key),
            int(trial), int(attempts) + 1,
        )  # fmt: skip

    def heartbeat(self, item: WorkItem) -> bool:
        """Keep the claim (and the device) alive; False if the claim was lost."""
        now = time.time()
        with self.store.transaction() as db:
            kept = db.execute(
                "UPDATE work_items SET heartbeat_unix_s = ? WHERE id = ? AND token = ? "
                "AND state = 'claimed'",
                (now, item.id, self.token),
            ).rowcount
            db.execute(
                "UPDATE lab_devices SET heartbeat_unix_s = ? WHERE device = ? AND token = ?",
                (now, item.device, self.token),
            )
        return kept == 1

    def complete(
        self,
        item: WorkItem,
        status: MeasurementStatus,
        reason: str | None,
        document: Mapping[str, Any] | None,
    ) -> int | None:
        """Commit the item's measurement and mark it done, in one transaction, if the claim
        is still this worker's; the measurement id, or None when another worker reclaimed it
        (the measurement is dropped: that worker commits its own). A run whose items are all
        done is marked complete."""
        with self.store.transaction() as db:
            row = db.one(
                "SELECT state, token FROM work_items WHERE id = ?" + db.row_lock, (item.id,)
            )
            if row is None or row[0] != "claimed" or row[1] != self.token:
                return None
            measurement_id = self.store.insert_measurement(
                db,
                run_id=item.run_id,
                model_sha256=item.model_sha256,
                config_key=item.config_key,
                trial=item.trial,
                status=status,
                reason=reason,
                document=document,
            )
            db.execute(
                "UPDATE work_items SET state = 'done', measurement_id = ?, finished_at = ? "
                "WHERE id = ?",
                (measurement_id, timestamp(), item.id),
            )
            version = (document or {}).get("runtime")
            if isinstance(version, Mapping) and version.get("version"):
                db.execute(
                    "UPDATE runs SET runtime_version = ? WHERE id = ? AND runtime_version IS NULL",
                    (str(version["version"]), item.run_id),
                )
            left = db.one(
                "SELECT COUNT(*) FROM work_items WHERE run_id = ? AND state != 'done'",
                (item.run_id,),
            )[0]
            if int(left) == 0:
                db.execute(
                    "UPDATE runs SET status = 'complete', finished_at = ? WHERE id = ?",
                    (timestamp(), item.run_id),
                )
        return measurement_id

    def abandon(self, item: WorkItem) -> None:
        """Put a claimed item back in the queue at once (a worker that stops mid-item)."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE work_items SET state = 'pending', token = NULL, heartbeat_unix_s = NULL "
                "WHERE id = ? AND token = ? AND state = 'claimed'",
                (item.id, self.token),
            )

    def release(self, device: str) -> None:
        """Give the device back (its claimed items stay claimed until their lease ends)."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE lab_devices SET token = NULL, holder = NULL, host = NULL, pid = NULL, "
                "heartbeat_unix_s = NULL WHERE device = ? AND token = ?",
                (device, self.token),
            )

    # -- reading ---------------------------------------------------------------------------

    def status(self, campaign: str | None = None) -> list[DeviceStatus]:
        """Every device with items (in ``campaign``, or in any), by name."""
        scope = "" if campaign is None else " WHERE w.campaign = ?"
        args: tuple[object, ...] = () if campaign is None else (campaign,)
        counts = self.db.execute(
            "SELECT w.device, "
            "SUM(CASE WHEN w.state = 'pending' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN w.state = 'claimed' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN w.state = 'done' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END) "
            "FROM work_items w LEFT JOIN measurements m ON m.id = w.measurement_id"
            + scope + " GROUP BY w.device ORDER BY w.device",
            args,
        ).fetchall()  # fmt: skip
        now = time.time()
        out: list[DeviceStatus] = []
        for device, pending, claimed, done, failed in counts:
            held = self.db.one(
                "SELECT token, holder, host, pid, campaign, heartbeat_unix_s, lease_s "
                "FROM lab_devices WHERE device = ?",
                (device,),
            )
            token, holder, host, pid, held_campaign, heartbeat, lease = held or (None,) * 7
            age = None if heartbeat is None else max(0.0, now - float(heartbeat))
            out.append(
                DeviceStatus(
                    device=str(device),
                    holder=holder if token else None,
                    host=host if token else None,
                    pid=int(pid) if token and pid is not None else None,
                    campaign=held_campaign if token else None,
                    heartbeat_age_s=age if token else None,
                    live=bool(token) and age is not None and age <= float(lease or 0.0),
                    pending=int(pending or 0),
                    claimed=int(claimed or 0),
                    done=int(done or 0),
                    failed=int(failed or 0),
                )
            )
        return out

    def progress(self, device: str, campaign: str | None = None) -> tuple[int, int]:
        """(done, total) items of a device (in ``campaign``, or in any)."""
        scope = "" if campaign is None else " AND campaign = ?"
        args: tuple[object, ...] = (device,) if campaign is None else (device, campaign)
        row = self.db.one(
            "SELECT SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), COUNT(*) FROM work_items "
            "WHERE device = ?" + scope,
            args,
        )
        return int(row[0] or 0), int(row[1] or 0)

    def campaigns(self) -> list[str]:
        rows = self.db.execute(
            "SELECT campaign FROM work_items GROUP BY campaign ORDER BY MIN(id)"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def runs_of(self, campaign: str) -> dict[str, int]:
        """The campaign's run per device."""
        rows = self.db.execute(
            "SELECT device, MIN(run_id) FROM work_items WHERE campaign = ? GROUP BY device",
            (campaign,),
        ).fetchall()
        return {str(device): int(run_id) for device, run_id in rows}


def plan_keys(
    config_items: Sequence[tuple[str, Mapping[str, object], int]],
) -> list[tuple[str, str, int]]:
    """(sha256, configuration, trial) triples as the queue stores them (canonical keys)."""

    return [(sha, config_key(config), trial) for sha, config, trial in config_items]


def parse_config_key(key: str) -> dict[str, Any]:
    value = json.loads(key)
    return dict(value) if isinstance(value, dict) else {}
