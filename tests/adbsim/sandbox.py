"""Where device paths live on the host, for the simulated phone.

``/data/local/tmp`` is a writable sandbox directory; the fake ``/sys`` CPU and thermal
trees, ``/proc/cpuinfo`` and ``/proc/meminfo`` are read-only files written by
``phone.build_sandbox``. File transfers (the sync service) may only touch those paths:
a ``..`` component or a symlink that resolves outside is refused, as a real device
refuses writes outside the shell user's reach. Shell commands run as ordinary host
processes: their device paths are rewritten to the sandbox (and the sandbox prefix is
removed from their output again), which is a convenience, not a security boundary.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

WRITABLE_PREFIXES = ("/data/local/tmp",)
READONLY_PREFIXES = (
    "/sys/devices/system/cpu",
    "/sys/class/thermal",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/system/bin",
    "/system/etc",
)
_ALL_PREFIXES = WRITABLE_PREFIXES + READONLY_PREFIXES
_PREFIX_RE = re.compile(
    r"(?<![\w./-])("
    + "|".join(re.escape(p) for p in sorted(_ALL_PREFIXES, key=len, reverse=True))
    + r")(?![\w.-])"
)


class PathRefused(Exception):
    """A device path the simulated phone does not let the shell user touch."""


@dataclass(frozen=True)
class Sandbox:
    """The host directory that plays the device's ``/``."""

    root: Path

    def host_path(self, device_path: str, write: bool) -> Path:
        """The host path for a device path, or ``PathRefused``."""
        if not device_path.startswith("/"):
            raise PathRefused("Permission denied (relative path)")
        parts = device_path.split("/")
        if ".." in parts:
            raise PathRefused("Permission denied (path escapes the sandbox)")
        normal = "/" + "/".join(p for p in parts if p not in ("", "."))
        prefixes = WRITABLE_PREFIXES if write else _ALL_PREFIXES
        for prefix in prefixes:
            if normal == prefix or normal.startswith(prefix + "/"):
                host = self.root / normal.lstrip("/")
                self._check_inside(host, self.root / prefix.lstrip("/"))
                return host
        raise PathRefused("Permission denied")

    @staticmethod
    def _check_inside(host: Path, top: Path) -> None:
        real_top = os.path.realpath(top)
        real = os.path.realpath(host)
        if real != real_top and not real.startswith(real_top + os.sep):
            raise PathRefused("Permission denied (symlink escapes the sandbox)")

    def rewrite_command(self, command: str) -> str:
        """Device paths in a shell command, pointed at the sandbox."""
        root = str(self.root)
        return _PREFIX_RE.sub(lambda m: root + m.group(1), command)

    def shell_env(self) -> dict[str, str]:
        tmp = str(self.root / "data" / "local" / "tmp")
        path = os.pathsep.join(
            [str(self.root / "system" / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]
        )
        return {
            "PATH": path,
            "HOME": tmp,
            "TMPDIR": tmp,
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "LC_ALL": "C.UTF-8",
        }


class OutputUnmapper:
    """Removes the sandbox prefix from a byte stream, also across chunk boundaries."""

    def __init__(self, root: Path) -> None:
        self._needle = str(root).encode()
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        self._held = b""
        # Hold back a tail that could be the start of the prefix.
        for size in range(min(len(self._needle), len(data)), 0, -1):
            if self._needle.startswith(data[-size:]):
                self._held = data[-size:]
                data = data[:-size]
                break
        return data.replace(self._needle + b"/", b"/")

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held
