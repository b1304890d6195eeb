"""The rows of the results database as values, and the decoding of the JSON they hold.

Owns the records a run and a model read back as (``RunRecord``, ``ModelRecord``), the
statuses a run and a measurement may have, the shape of a joined measurement row (``Row``),
the canonical key of a configuration (``config_key``), the stored time (``timestamp``), the
bounded reading of stored JSON (``load_stored_json``: a database is a file anyone can craft,
so its text is held to a size, a nesting depth and, for a runner document, a sample count,
and anything else is refused in one line naming the run and the field, ``StoredDataError``)
and the lenient decoding of what passes (``decode_document``, ``as_mapping``, ``as_number``,
``as_integer``). The store (``results.store``, which writes and reads these rows) and its
frames (``results.views``, computed from them) both build on it; it touches no database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, cast

from devices.agent.cli import DEFAULT_MAX_SAMPLES
from results.errors import ResultsError

__all__ = [
    "MAX_JSON_CHARS",
    "MAX_JSON_DEPTH",
    "MeasurementStatus",
    "ModelRecord",
    "Row",
    "RunRecord",
    "RunStatus",
    "StoredDataError",
    "as_integer",
    "as_mapping",
    "as_number",
    "config_key",
    "decode_document",
    "load_stored_json",
    "timestamp",
]

MAX_JSON_DEPTH = 64
"""The deepest nesting a stored JSON value may have (the harness writes at most a few)."""
MAX_JSON_CHARS = 64 * 2**20
"""The longest stored JSON text read back (a plan of ``MAX_PLAN_ITEMS`` models fits)."""
MAX_SAMPLES = DEFAULT_MAX_SAMPLES
"""The most timed samples one runner document may hold (the runner stops there)."""


class StoredDataError(ResultsError):
    """A stored value is not what the harness writes (a damaged or crafted database)."""


def stored_data_error(where: str, what: str) -> StoredDataError:
    """The one line for a stored field that is not valid: ``where`` names the run."""
    return StoredDataError(
        f"{where}: the stored {what} is not valid (a damaged or crafted database); "
        "remove that run or read another database"
    )


def _depth_within(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def load_stored_json(text: object, where: str, what: str) -> Any:
    """Stored JSON text read back: at most ``MAX_JSON_CHARS`` characters nested at most
    ``MAX_JSON_DEPTH`` deep; else ``StoredDataError`` (the fields' own checks refuse a NaN)."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise stored_data_error(where, what) from None
    if not isinstance(text, str) or len(text) > MAX_JSON_CHARS:
        raise stored_data_error(where, what)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise stored_data_error(where, what) from None
    if not _depth_within(value, MAX_JSON_DEPTH):
        raise stored_data_error(where, what)
    return value


RunStatus = Literal["running", "complete", "interrupted", "failed"]
MeasurementStatus = Literal["ok", "failed"]

Row = Mapping[str, Any]
"""One joined measurement row (``Store.measurement_rows``), keyed by column name."""


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``models``; alpha/resolution/variant/kernel are None for foreign models."""

    sha256: str
    name: str
    alpha: float | None = None
    resolution: int | None = None
    variant: str | None = None
    kernel: int | None = None
    precision: str | None = None
    macs: int | None = None
    params: int | None = None
    weight_bytes: int | None = None
    peak_activation_bytes: int | None = None
    file_bytes: int | None = None
    cost: Mapping[str, object] | None = None


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs`` with its JSON parsed, plus measurement counts."""

    id: int
    label: str | None
    created_at: str
    finished_at: str | None
    status: RunStatus
    """As stored, except that a ``running`` run no live process holds the lease of (see
    ``Store.lease``) reads ``interrupted``."""
    device: str
    device_kind: str
    device_facts: Mapping[str, Any]
    config: Mapping[str, Any]
    harness_version: str
    runtime_version: str | None
    measurements: int
    failed_measurements: int
    campaign: str | None = None
    """The lab campaign the run was planned in (``runs.campaign``), None for a lone run."""


def config_key(config: Mapping[str, object]) -> str:
    """Canonical JSON of a per-measurement configuration: keys sorted, no spaces.

    Equal configurations give equal keys whatever the key order, so resume can match them.
    """
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"), allow_nan=False)


def timestamp() -> str:
    """The current time as the database stores it: ISO 8601 in UTC, to the microsecond."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def as_mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else {}


def as_number(value: object) -> float | None:
    """``value`` as a finite float, None when it is no number (booleans are none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def as_integer(value: object) -> int | None:
    """``value`` when it is an integer (booleans are none), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def decode_document(row: Row) -> Mapping[str, Any]:
    """The runner document stored in a measurement row, empty when it has none; one that is
    not JSON, too deep or holds more than ``MAX_SAMPLES`` samples is refused."""
    text = row["document"]
    if not text:
        return {}
    where = f"run {row.get('run_id', '?')}"
    document = as_mapping(load_stored_json(text, where, "measurement document"))
    samples = document.get("samples_ms")
    if samples is not None and (
        not isinstance(samples, list)
        or len(samples) > MAX_SAMPLES
        or not all(as_number(v) is not None for v in samples)
    ):
        raise stored_data_error(where, "measurement samples")
    return document
