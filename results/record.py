"""The measurement record: one agent document parsed once on the host, typed and frozen.

``Measurement.from_document`` reads a stored or freshly printed document (the layout of
``devices/agent/record.py``, schema ``mnbench.runner/1``, perf_test conversions included)
and keeps the raw document beside typed fields, as pyperf's ``Run`` keeps its metadata.
Fields that are missing or of the wrong type in an old or foreign document become None or
empty rather than failing, so every stored database still opens; a document that is not a
JSON object at all is ``RecordError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from devices.agent.record import SCHEMA
from results.rows import as_integer, as_mapping, as_number


class RecordError(ValueError):
    """A stored document that is not a measurement document at all."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Measurement:
    """One measurement (one agent process, or one perf_test run)."""

    schema: str | None
    status: str | None
    error: str | None
    model_path: str | None
    model_sha256: str | None
    model_file_bytes: int | None
    runtime_version: str | None
    samples_ms: tuple[float, ...]
    reported_ms: Mapping[str, float]
    median_ci_ms: tuple[float, float] | None
    iterations: int | None
    stop_reason: str | None
    min_samples: int | None
    settings: Mapping[str, Any]
    timings: Mapping[str, Any]
    memory: Mapping[str, Any]
    host_before: Mapping[str, Any]
    host_after: Mapping[str, Any]
    profile: Mapping[str, Mapping[str, Any]] | None
    document: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_document(cls, document: object) -> Measurement:
        """The record of a document (a mapping, or its JSON text)."""
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except ValueError as error:
                raise RecordError(f"a measurement document is not JSON: {error}") from None
        if not isinstance(document, Mapping):
            raise RecordError("a measurement document is a JSON object")
        doc = cast(Mapping[str, Any], document)
        model = as_mapping(doc.get("model"))
        raw_samples = doc.get("samples_ms")
        samples = tuple(
            float(v)
            for v in (raw_samples if isinstance(raw_samples, list) else [])
            if as_number(v) is not None
        )
        reported = {
            str(key): float(value)
            for key, value in as_mapping(doc.get("reported_ms")).items()
            if as_number(value) is not None
        }
        ci = doc.get("median_ci_ms")
        median_ci: tuple[float, float] | None = None
        if isinstance(ci, list) and len(ci) == 2:
            low, high = as_number(ci[0]), as_number(ci[1])
            if low is not None and high is not None:
                median_ci = (low, high)
        settings = as_mapping(doc.get("settings"))
        profile = doc.get("profile")
        return cls(
            schema=_text(doc.get("schema")),
            status=_text(doc.get("status")),
            error=_text(doc.get("error")),
            model_path=_text(model.get("path")),
            model_sha256=_text(model.get("sha256")),
            model_file_bytes=as_integer(model.get("file_bytes")),
            runtime_version=_text(as_mapping(doc.get("runtime")).get("version")),
            samples_ms=samples,
            reported_ms=MappingProxyType(reported),
            median_ci_ms=median_ci,
            iterations=as_integer(doc.get("iterations")),
            stop_reason=_text(doc.get("stop_reason")),
            min_samples=as_integer(settings.get("min_samples")),
            settings=settings,
            timings=as_mapping(doc.get("timings")),
            memory=as_mapping(doc.get("memory")),
            host_before=as_mapping(doc.get("host_before")),
            host_after=as_mapping(doc.get("host_after")),
            profile=(
                {str(k): as_mapping(v) for k, v in profile.items()}
                if isinstance(profile, Mapping)
                else None
            ),
            document=doc,
        )

    @property
    def is_agent_document(self) -> bool:
        """True when the document carries the agent's schema name."""
        return self.schema == SCHEMA

    def within_process_ci_ms(self) -> tuple[float | None, float | None]:
        """The 95 % CI of the median within this process: the agent's own order-statistic
        interval, as the stopping rule used it (recomputed from the samples when the
        document lacks it); (None, None) when unbounded or without samples."""
        if self.median_ci_ms is not None:
            return self.median_ci_ms
        from results.stats import within_process_median_ci  # numpy: only when needed

        return within_process_median_ci(self.samples_ms)
