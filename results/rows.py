"""The rows of the results database as values, and the decoding of the JSON they hold.

Owns the records a run and a model read back as (``RunRecord``, ``ModelRecord``), the
statuses a run and a measurement may have, the shape of a joined measurement row (``Row``),
the canonical key of a configuration (``config_key``), the stored time (``timestamp``) and
the lenient decoding of stored JSON (``decode_document``, ``as_mapping``, ``as_number``,
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

__all__ = [
    "MeasurementStatus",
    "ModelRecord",
    "Row",
    "RunRecord",
    "RunStatus",
    "as_integer",
    "as_mapping",
    "as_number",
    "config_key",
    "decode_document",
    "timestamp",
]

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
    """The runner document stored in a measurement row, empty when it has none."""
    text = row["document"]
    return as_mapping(json.loads(text)) if text else {}
