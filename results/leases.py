"""Run leases: which live process is measuring a run now (``run_leases``).

Owns taking a run's lease (or taking over a stale one), its heartbeat, checking that a
writer still holds it, giving it back, and when a lease counts as stale: its holder is a
dead process on this host, or its heartbeat is older than the holder's own limit. A run
whose lease is stale reads ``interrupted`` (``results.runs``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from devices.processes import pid_alive
from results.backend import Database
from results.connection import Connection
from results.errors import ResultsError
from results.rows import timestamp

__all__ = ["LeaseHeld", "Leases", "lease_is_stale"]


class LeaseHeld(ResultsError):
    """Another live process is measuring this run (exit code 2)."""


def lease_is_stale(pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float) -> bool:
    """Whether a lease row no longer holds its run: too old, or its process is gone."""
    if time.time() - float(heartbeat_unix_s) > float(stale_after_s):
        return True
    return host == socket.gethostname() and (int(pid) == os.getpid() or not pid_alive(int(pid)))


def _held_message(
    run_id: int, holder: str, pid: int, host: str, heartbeat_unix_s: float, stale_after_s: float
) -> str:
    age_s = max(0.0, time.time() - float(heartbeat_unix_s))
    return (
        f"run {run_id} is being measured by {holder} (pid {pid} on {host}, last heartbeat "
        f"{age_s:.0f} s ago); wait for it to finish or stop it, a lease older than "
        f"{float(stale_after_s):.0f} s is taken over"
    )


class Leases(Connection):
    """The run leases this store holds, taken, kept alive and given back."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._leases: dict[int, str] = {}

    @contextmanager
    def lease(self, run_id: int, holder: str, stale_after_s: float) -> Iterator[None]:
        """Hold the run's measuring lease for the block; ``LeaseHeld`` if someone else has it.

        A lease records holder, pid, host and a heartbeat (``heartbeat``). It is taken over
        when its holder is a dead process on this host or its heartbeat is older than the
        holder's own ``stale_after_s``; the check and the take-over are one write
        transaction that locks the run's row, so of two measurers starting at once exactly
        one wins. A lease this store already holds (``create_run(lease_holder=...)``) is
        adopted and released at the end of the block.
        """
        if run_id not in self._leases:
            with self.transaction() as db:
                self._acquire(db, run_id, holder, stale_after_s)
        try:
            yield
        finally:
            self.release_lease(run_id)

    def _acquire(self, db: Database, run_id: int, holder: str, stale_after_s: float) -> None:
        if db.row_lock:  # serialise acquirers of this run (SQLite's write lock already does)
            db.one("SELECT id FROM runs WHERE id = ?" + db.row_lock, (run_id,))
        row = db.one(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        )
        if row is not None and not lease_is_stale(*row[1:]):
            raise LeaseHeld(_held_message(run_id, *row))
        token = uuid.uuid4().hex
        db.execute(
            "INSERT INTO run_leases (run_id, token, holder, pid, host, "
            "acquired_at, heartbeat_unix_s, stale_after_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET token = excluded.token, "
            "holder = excluded.holder, pid = excluded.pid, host = excluded.host, "
            "acquired_at = excluded.acquired_at, heartbeat_unix_s = excluded.heartbeat_unix_s, "
            "stale_after_s = excluded.stale_after_s",
            (
                run_id,
                token,
                holder,
                os.getpid(),
                socket.gethostname(),
                timestamp(),
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
        with contextlib.suppress(*self.database.errors), self.transaction() as db:
            db.execute("DELETE FROM run_leases WHERE run_id = ? AND token = ?", (run_id, token))

    def heartbeat(self, run_id: int) -> None:
        """Say the lease holder is alive (no-op without a lease); ``LeaseHeld`` if it was lost."""
        token = self._leases.get(run_id)
        if token is None:
            return
        with self.transaction() as db:
            self._check_lease(db, run_id)
            db.execute(
                "UPDATE run_leases SET heartbeat_unix_s = ? WHERE run_id = ? AND token = ?",
                (time.time(), run_id, token),
            )

    def _check_lease(self, db: Database, run_id: int) -> None:
        token = self._leases.get(run_id)
        if token is None:
            return
        row = db.one(
            "SELECT token, holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?" + db.row_lock,
            (run_id,),
        )
        if row is None or row[0] != token:
            self._leases.pop(run_id, None)
            taken = f" to {_held_message(run_id, *row[1:])}" if row is not None else ""
            raise LeaseHeld(f"this measurer lost its lease on run {run_id}{taken}")

    def lease_holder(self, run_id: int) -> Mapping[str, object] | None:
        """The current lease row of a run (None when nobody holds it)."""
        row = self.database.one(
            "SELECT holder, pid, host, heartbeat_unix_s, stale_after_s FROM run_leases "
            "WHERE run_id = ?",
            (run_id,),
        )
        if row is None:
            return None
        return dict(
            zip(("holder", "pid", "host", "heartbeat_unix_s", "stale_after_s"), row, strict=True)
        )

    def close(self) -> None:
        """Give back every lease this store holds, then close the database."""
        for run_id in list(self._leases):
            self.release_lease(run_id)
        super().close()
