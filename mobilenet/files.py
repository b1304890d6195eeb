"""Reading a user's file within bounds, and atomic file writes that honour the umask.

``read_bounded`` is how the harness reads a file a user names (an inventory, an accuracy
CSV): a FIFO, device, socket or directory is refused before anything is read (stat before
open, then an open that cannot block on a FIFO and an fstat of what was opened), and no more
than a stated size is read, so ``/dev/zero`` or a FIFO neither fills memory nor hangs.
``check_openable`` refuses the same kinds for a path another library will open (a database).

``tempfile.mkstemp`` creates its file mode 0600 whatever the umask; a model or report that
a user shares would stay private to its writer. Every file the harness writes goes through
``write_atomic``, which gives the file the mode ``open()`` would (0666 minus the umask).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from mobilenet.errors import UserError

MIB = 1 << 20


class UnreadableFile(UserError):
    """A file a user named is not a regular file, or is larger than the harness reads."""


def special_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file ("a FIFO", ...)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _refuse_kind(path: Path, flag: str, mode: int) -> None:
    kind = special_kind(mode)
    if kind is not None:
        raise UnreadableFile(f"{flag} {path} is {kind}; give the path of a regular file")


def check_openable(path: Path, flag: str) -> None:
    """Refuse ``path`` when it exists and is a FIFO, device, socket or directory (a missing
    path is left to the caller); nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise UnreadableFile(
            f"{flag} {_shown(path)} cannot be examined ({_reason(exc)}); give another path"
        ) from None
    _refuse_kind(path, flag, mode)


def read_bounded(path: Path, *, flag: str, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    A FIFO, device, socket or directory, or a file over ``limit`` bytes, is an
    ``UnreadableFile`` naming ``flag``; a missing or unreadable file raises the ``OSError``
    of ``open`` for the caller to word."""
    _refuse_kind(path, flag, os.stat(path).st_mode)
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(handle)
        _refuse_kind(path, flag, status.st_mode)
        too_big = UnreadableFile(
            f"{flag} {path} is larger than {_size(limit)}; give a smaller file"
        )
        if status.st_size > limit:
            raise too_big
        os.set_blocking(handle, True)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(handle, min(left, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise too_big
        return b"".join(chunks)
    finally:
        os.close(handle)


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB and limit % MIB == 0 else f"{limit} bytes"


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:100] + "..." + text[-40:]


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


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
