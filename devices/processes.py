"""Whether a process on this host still exists: the one check behind every lease and lock
that a crashed process may have left (device locks, run leases)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists on this host, even if it belongs to another user."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
