"""Atomic file writes that honour the umask: a temporary name beside the target, then rename.

``tempfile.mkstemp`` creates its file mode 0600 whatever the umask; a model or report that
a user shares would stay private to its writer. Every file the harness writes goes through
``write_atomic``, which gives the file the mode ``open()`` would (0666 minus the umask).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, suffix: str = ".part") -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace,
    so a reader never sees half a file; the temporary file is removed on any failure."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
