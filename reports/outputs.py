"""The files mnbench owns in an output directory: a manifest of their names and content hashes.

A report (``.mnbench-report.json``) and a regression chart (``.mnbench-chart.json``) each
list in a manifest beside their files the names they wrote and the sha256 of each file's
content. A later build replaces or removes a file only when the manifest lists its name,
the name is one that build writes, the file is a regular file inside the directory, and
its content still hashes to a value the manifest recorded: a file the user edited, a file
a planted manifest names, the database being read, a link, anything outside the directory
is left alone. A manifest without hashes (an older mnbench's) proves nothing: nothing it
lists is removed, and a listed file is replaced only by identical content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from mobilenet import files
from mobilenet.files import UnreadableFile, read_bounded
from reports.errors import ReportError

MANIFEST_SCHEMA: Final = "mnbench.report-manifest/1"
MANIFEST_LIMIT_BYTES: Final = 4 << 20
"""The largest manifest read (one lists a few dozen names)."""
HASH_LIMIT_BYTES: Final = 512 << 20
"""A file larger than this is never one mnbench wrote, so never hashed."""


@dataclass(frozen=True)
class Owned:
    """What a directory's manifest says mnbench wrote there."""

    names: frozenset[str] = frozenset()
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    proven: bool = True
    """False for a manifest without hashes: it lists names but proves no content."""
    protected: tuple[Path, ...] = ()
    """Files never replaced or removed whatever the manifest says (the database read)."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_owned(
    out_dir: Path,
    manifest_name: str,
    writes: re.Pattern[str],
    *,
    flag: str,
    protected: Iterable[Path] = (),
) -> Owned | None:
    """The files mnbench owns in ``out_dir``, from its manifest; None when the directory
    holds files but no manifest. ``writes`` matches the names this build writes: no other
    name is ever owned. A manifest that is not mnbench's is a ``ReportError``."""
    guard = tuple(protected)
    if not out_dir.is_dir():
        return Owned(protected=guard)
    manifest = out_dir / manifest_name
    try:
        raw = read_bounded(manifest, flag="manifest", limit=MANIFEST_LIMIT_BYTES)
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return None if any(out_dir.iterdir()) else Owned(protected=guard)
    except (OSError, ValueError, UnreadableFile, RecursionError):
        doc = None
    names = doc.get("files") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != MANIFEST_SCHEMA
        or not isinstance(names, list)
    ):
        raise ReportError(f"{manifest} is not a manifest of mnbench; give {flag} another directory")
    listed = frozenset(n for n in names if isinstance(n, str) and writes.fullmatch(n))
    recorded = doc.get("sha256")
    if not isinstance(recorded, dict):
        return Owned(names=listed, proven=False, protected=guard)
    hashes: dict[str, frozenset[str]] = {}
    for name in listed:
        values = recorded.get(name)
        if isinstance(values, list):
            hashes[name] = frozenset(v for v in values if isinstance(v, str))
    return Owned(names=listed, hashes=hashes, protected=guard)


def _regular_digest(path: Path, owned: Owned) -> str | None:
    """The sha256 of ``path`` when it is a regular file (not a link), not a protected file,
    and small enough to be mnbench's; else None."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode) or status.st_size > HASH_LIMIT_BYTES:
        return None
    for guarded in owned.protected:
        try:
            if os.path.samefile(path, guarded):
                return None
        except OSError:
            continue
    try:
        return digest(read_bounded(path, flag="output", limit=HASH_LIMIT_BYTES))
    except (OSError, UnreadableFile):
        return None


def may_replace(out_dir: Path, owned: Owned, name: str, content: bytes) -> bool:
    """Whether writing ``content`` as ``out_dir/name`` destroys nothing but mnbench's own
    file (or nothing at all)."""
    path = out_dir / name
    if not os.path.lexists(path):
        return True
    found = _regular_digest(path, owned)
    if found is None or name not in owned.names:
        return False
    if owned.proven:
        return found in owned.hashes.get(name, frozenset())
    return found == digest(content)


def may_remove(out_dir: Path, owned: Owned, name: str) -> bool:
    """Whether ``out_dir/name`` is a file mnbench provably wrote (and may delete)."""
    if not owned.proven or name not in owned.names:
        return False
    found = _regular_digest(out_dir / name, owned)
    return found is not None and found in owned.hashes.get(name, frozenset())


def write_manifest(out_dir: Path, manifest_name: str, hashes: Mapping[str, Iterable[str]]) -> None:
    """Record these names, each with the hashes of content mnbench wrote under it."""
    doc = {
        "schema": MANIFEST_SCHEMA,
        "files": sorted(hashes),
        "sha256": {name: sorted(set(values)) for name, values in sorted(hashes.items())},
    }
    files.write_atomic(
        out_dir / manifest_name, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), ".tmp"
    )
