"""The agent as one file to push: a stdlib ``zipapp`` with deterministic bytes.

``zipapp_bytes`` stores the modules of this package (sorted, fixed timestamps and
permissions, stored uncompressed so no zlib version changes them) under ``devices/agent/`` with a
``__main__.py`` that calls the given entry point, so the same sources always give the same
bytes and a hash of the archive is a stable cache key. ``zipapp_path`` builds each archive
once per host process into the host's cache directory, named by that hash, and returns its
path; the host pushes it and runs ``python3 agent.pyz MODEL [flags]`` (``AGENT``) or
``python3 limits.pyz [flags]`` (``LIMITS``) on any device.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

AGENT = "devices.agent.cli:main"
"""Entry point of ``agent.pyz``: the measuring agent."""
LIMITS = "devices.agent.limits:main"
"""Entry point of ``limits.pyz``: the compute and bandwidth microbenchmark."""
ARCHIVE_NAMES = {AGENT: "agent.pyz", LIMITS: "limits.pyz"}

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_PACKAGE_DIR = Path(__file__).resolve().parent
_PACKAGE_INIT = '"""mnbench on a device: only its agent (devices.agent) is here."""\n'
_MAIN = "import sys\nfrom {module} import {function}\n\nsys.exit({function}())\n"
_lock = threading.Lock()
_built: dict[tuple[str, Path | None], Path] = {}


def _entry(path: str, data: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED  # zlib's output may vary between versions
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the host
    return info, data


def zipapp_bytes(entry: str = AGENT) -> bytes:
    """The archive for ``entry`` (``module:function``): same sources, same bytes."""
    module, _, function = entry.partition(":")
    if not module.startswith("devices.agent.") or not function.isidentifier():
        raise ValueError(f"not an agent entry point: {entry!r}")
    files = [
        ("__main__.py", _MAIN.format(module=module, function=function).encode()),
        ("devices/__init__.py", _PACKAGE_INIT.encode()),
    ]
    for source in sorted(_PACKAGE_DIR.glob("*.py")):
        files.append((f"devices/agent/{source.name}", source.read_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in sorted(files):
            info, payload = _entry(path, data)
            archive.writestr(info, payload)
    return buffer.getvalue()


def zipapp_path(entry: str = AGENT, cache_dir: Path | None = None) -> Path:
    """The archive for ``entry`` as a file, built at most once per process (thread-safe).

    In ``cache_dir`` it is named by its digest (``agent-<sha256[:16]>.pyz``) and written
    atomically, so processes share it and a killed one leaves nothing half-written; without
    one, or when it cannot be written, it goes to a private temporary directory removed at
    exit."""
    with _lock:
        path = _built.get((entry, cache_dir))
        if path is not None and path.is_file():
            return path
        data = zipapp_bytes(entry)
        stem = ARCHIVE_NAMES.get(entry, "agent.pyz").rsplit(".", 1)[0]
        path = None
        if cache_dir is not None:
            try:
                path = _write_cached(
                    cache_dir, f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}.pyz", data
                )
            except OSError:
                path = None
        if path is None:
            directory = Path(tempfile.mkdtemp(prefix="mnbench-agent-"))
            atexit.register(shutil.rmtree, directory, True)
            path = directory / f"{stem}.pyz"
            path.write_bytes(data)
        _built[entry, cache_dir] = path
        return path


def _write_cached(cache_dir: Path, name: str, data: bytes) -> Path:
    path = cache_dir / name
    if path.is_file() and path.read_bytes() == data:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=cache_dir)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    return path


def zipapp_sha256(entry: str = AGENT) -> str:
    """The hex digest of the archive for ``entry`` (a stable cache key)."""
    return hashlib.sha256(zipapp_bytes(entry)).hexdigest()
