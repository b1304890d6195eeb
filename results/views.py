"""Analysis views of the results store: frames computed from its rows.

Owns the frames the CLI, reports and tests read (``runs_frame``, ``measurements_frame``,
``results_frame``, ``probes_frame``, ``profiles_frame``), the aggregation of a cell's trials
(``_aggregate``) and the column order and dtypes they promise (``RESULT_COLUMNS``). Each is
a function over rows the store has already read (``results.store.Store`` calls them); none
touches a database. pandas and the statistics (scipy) are imported inside the functions,
so a sweep that only writes starts fast.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Final

from results.record import Measurement
from results.rows import Row, as_integer, as_mapping, as_number, decode_document, load_stored_json

if TYPE_CHECKING:
    import pandas as pd

    from results.rows import RunRecord
    from results.stats import Summary

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "run_id",
    "device",
    "runtime_version",
    "name",
    "alpha",
    "resolution",
    "variant",
    "kernel",
    "precision",
    "threads",
    "trials",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "ci_reason",
    "spread",
    "within_ci_low_ms",
    "within_ci_high_ms",
    "samples",
    "peak_rss_bytes",
    "load_ms",
    "first_ms",
    "macs",
    "params",
    "status",
    "flags",
    "unreliable",
    "campaign",
)
"""The first columns of ``results_frame``, in this order; reports and the CLI rely on them.
``campaign`` is the lab campaign of the cell's run (empty for a run of its own)."""
RESULT_EXTRA_COLUMNS: Final[tuple[str, ...]] = (
    "label",
    "device_kind",
    "sha256",
    "config_key",
    "cpus",
    "max_ms",
    "cv",
    "outliers_low",
    "outliers_high",
    "failed_trials",
    "reasons",
    "peak_rss_load_bytes",
    "weight_bytes",
    "peak_activation_bytes",
    "file_bytes",
    "trial_medians_ms",
    "hottest_c",
    "other_load",
    "cooldown_s",
    "trial_reference_ms",
    "device_state",
    "pin_command",
)
_INT_COLUMNS: Final = (
    "run_id",
    "resolution",
    "kernel",
    "threads",
    "trials",
    "samples",
    "peak_rss_bytes",
    "macs",
    "params",
    "outliers_low",
    "outliers_high",
    "failed_trials",
    "peak_rss_load_bytes",
    "weight_bytes",
    "peak_activation_bytes",
    "file_bytes",
)
_FLOAT_COLUMNS: Final = (
    "alpha",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "spread",
    "within_ci_low_ms",
    "within_ci_high_ms",
    "load_ms",
    "first_ms",
    "max_ms",
    "cv",
    "hottest_c",
    "other_load",
    "cooldown_s",
)


def runs_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: its columns, the parsed facts/config as dicts, and flattened facts.

    Top-level scalar device facts also get their own ``facts.KEY`` columns.
    """
    import pandas as pd

    records: list[dict[str, object]] = []
    for run in runs:
        record: dict[str, object] = {
            "run_id": run.id,
            "label": run.label,
            "campaign": run.campaign,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "status": run.status,
            "device": run.device,
            "device_kind": run.device_kind,
            "harness_version": run.harness_version,
            "runtime_version": run.runtime_version,
            "measurements": run.measurements,
            "failed_measurements": run.failed_measurements,
            "device_facts": dict(run.device_facts),
            "config": dict(run.config),
        }
        for key, value in run.device_facts.items():
            if value is None or isinstance(value, (str, int, float, bool)):
                record[f"facts.{key}"] = value
        records.append(record)
    columns = [
        "run_id",
        "label",
        "campaign",
        "created_at",
        "finished_at",
        "status",
        "device",
        "device_kind",
        "harness_version",
        "runtime_version",
        "measurements",
        "failed_measurements",
        "device_facts",
        "config",
    ]
    frame: pd.DataFrame = pd.DataFrame(records, columns=_union_columns(columns, records))
    return frame


def measurements_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """One row per measurement (trial): status, reason, its own summary, raw samples."""
    records: list[dict[str, object]] = []
    for row in rows:
        document = decode_document(row)
        record = Measurement.from_document(document)
        samples = list(record.samples_ms)
        summary = _trial_summary(record)
        timings = record.timings
        memory = record.memory
        records.append(
            {
                "id": row["id"],
                "run_id": row["run_id"],
                "device": row["device"],
                "label": row["label"],
                "sha256": row["model_sha256"],
                "name": _model_name(row, document),
                "config_key": row["config_key"],
                "threads": row["threads"],
                "cpus": _cpus(row["config_key"]),
                "trial": row["trial"],
                "status": row["status"],
                "reason": row["reason"],
                "created_at": row["created_at"],
                "runtime_version": record.runtime_version,
                "stop_reason": record.stop_reason,
                "samples": summary.n,
                "p50_ms": summary.median_ms,
                "p90_ms": summary.p90_ms,
                "p99_ms": summary.p99_ms,
                "mean_ms": summary.mean_ms,
                "std_ms": summary.std_ms,
                "min_ms": summary.min_ms,
                "max_ms": summary.max_ms,
                "cv": summary.cv,
                "ci_low_ms": summary.ci_low_ms,
                "ci_high_ms": summary.ci_high_ms,
                "outliers_low": summary.outliers_low,
                "outliers_high": summary.outliers_high,
                "flags": ",".join(summary.flags),
                "guard_flags": _guard_flags(document),
                "load_ms": as_number(timings.get("session_create_ms")),
                "first_ms": as_number(timings.get("first_inference_ms")),
                "peak_rss_bytes": as_integer(memory.get("peak_rss_end_bytes")),
                "peak_rss_load_bytes": as_integer(memory.get("peak_rss_after_load_bytes")),
                "samples_ms": samples,
            }
        )
    columns = [
        "id",
        "run_id",
        "device",
        "label",
        "sha256",
        "name",
        "config_key",
        "threads",
        "cpus",
        "trial",
        "status",
        "reason",
        "created_at",
        "runtime_version",
        "stop_reason",
        "samples",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "mean_ms",
        "std_ms",
        "min_ms",
        "max_ms",
        "cv",
        "ci_low_ms",
        "ci_high_ms",
        "outliers_low",
        "outliers_high",
        "flags",
        "guard_flags",
        "load_ms",
        "first_ms",
        "peak_rss_bytes",
        "peak_rss_load_bytes",
        "samples_ms",
    ]
    return _typed_frame(records, columns)


def results_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """One row per run × model × configuration, aggregated over its trials.

    Latency statistics pool the raw samples of the ok trials (a document without samples
    contributes its ``reported_ms``; when no trial has samples, each reported statistic
    is the median over trials). ``status`` is ok / partial / failed by how many trials
    were ok; ``few_samples`` compares the pooled count with the trials' summed
    ``settings.min_samples``. Columns: ``RESULT_COLUMNS`` then ``RESULT_EXTRA_COLUMNS``;
    integer columns use pandas' nullable ``Int64``, missing floats are NaN, and
    ``trial_medians_ms`` holds a list per cell.
    """
    groups: dict[tuple[int, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["run_id"], row["model_sha256"], row["config_key"]), []).append(row)
    records = sorted((_aggregate(rows) for rows in groups.values()), key=_grid_order)
    return _typed_frame(records, [*RESULT_COLUMNS, *RESULT_EXTRA_COLUMNS])


# -- latency models --------------------------------------------------------------------


def probes_frame(
    results: pd.DataFrame,
    cards: Mapping[str, Mapping[str, Any]],
    limits: Mapping[int, Mapping[str, Any]],
) -> pd.DataFrame:
    """One row per run × layer probe × configuration (``mobilenet.probes``): the columns of
    ``results_frame`` plus the probe's facts from its cost card (``role, block,
    in_channels, out_channels, in_size, out_size, stride``), the arithmetic intensity of
    its convs and the run's measured ceilings (``peak_gflop_s``, ``bandwidth_gb_s`` from
    the device facts' ``limits``, NaN when not measured).

    ``results``: the ``results_frame(run_ids)`` the caller already holds (aggregating
    bootstraps every cell, so a report computes it once)."""
    import pandas as pd

    variants = results["variant"].astype(object).fillna("").astype(str)
    results = results[variants.str.startswith("probe-")].reset_index(drop=True)
    extra: list[dict[str, object]] = []
    for row in results.to_dict("records"):
        card = cards.get(str(row["sha256"]), {})
        probe = as_mapping(card.get("probe"))
        layers = as_mapping(card.get("layers")).values()
        flops = sum(2 * (as_integer(as_mapping(x).get("macs")) or 0) for x in layers)
        moved = sum(
            as_integer(as_mapping(x).get("bytes")) or 0
            for x in layers
            if (as_integer(as_mapping(x).get("macs")) or 0) > 0
        )
        run_limits = limits.get(int(row["run_id"]), {})
        extra.append(
            {
                "role": probe.get("role", str(row["variant"])[len("probe-") :]),
                "block": as_integer(probe.get("block")),
                "in_channels": as_integer(probe.get("in_channels")),
                "out_channels": as_integer(probe.get("out_channels")),
                "in_size": as_integer(probe.get("in_size")),
                "out_size": as_integer(probe.get("out_size")),
                "stride": as_integer(probe.get("stride")),
                "intensity_flop_per_byte": flops / moved if moved else math.nan,
                "peak_gflop_s": as_number(run_limits.get("peak_gflop_s")),
                "bandwidth_gb_s": as_number(run_limits.get("bandwidth_gb_s")),
            }
        )
    columns = [
        "role",
        "block",
        "in_channels",
        "out_channels",
        "in_size",
        "out_size",
        "stride",
        "intensity_flop_per_byte",
        "peak_gflop_s",
        "bandwidth_gb_s",
    ]
    frame: pd.DataFrame = pd.concat(
        [results, pd.DataFrame(extra, columns=columns, index=results.index)], axis=1
    )
    for column in columns[1:7]:
        frame[column] = frame[column].astype("Int64")
    for column in columns[7:]:
        frame[column] = frame[column].astype("float64")
    return frame


def profiles_frame(rows: Sequence[Row], cards: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per-layer times from the runner's per-node profiles (``mnbench run --profile``).

    One row per run × model × configuration × layer: ``run_id, device, name, layer, kind
    (stem/depthwise/pointwise/standard/fc/other, as mobilenet.cost), time_ms (median over
    the trials of the layer's summed per-node medians: per inference), macs, flops_per_s``
    then ``sha256, threads, trials, nodes, op_types``. Profiled nodes map to layers by
    the longest graph-node-name prefix (``mobilenet.layers``) using the model's stored cost
    card, or for our generated models the architecture table; nodes that map to no layer
    are kept as rows with layer ``unassigned`` (one per node), never dropped.
    """
    from mobilenet.layers import UNASSIGNED, profile_layers, spec_card

    rows = [row for row in rows if row["status"] == "ok"]
    spec_cards: dict[str, Mapping[str, Any]] = {}
    groups: dict[tuple[int, str, str, str], dict[str, Any]] = {}
    for row in rows:
        profile = Measurement.from_document(decode_document(row)).profile
        if not profile:
            continue
        sha = str(row["model_sha256"])
        card = cards.get(sha)
        if card is None or "nodes" not in card:
            if sha not in spec_cards:
                spec_cards[sha] = _spec_card_of(row, spec_card)
            card = spec_cards[sha]
        for layer in profile_layers(profile, card):
            node_key = layer["layer"] if layer["layer"] != UNASSIGNED else layer["nodes"][0]
            key = (int(row["run_id"]), sha, str(row["config_key"]), str(node_key))
            entry = groups.setdefault(
                key,
                {
                    "run_id": int(row["run_id"]),
                    "device": row["device"],
                    "name": _model_name(row, {}),
                    "layer": layer["layer"],
                    "kind": layer["kind"],
                    "times_us": [],
                    "macs": layer["macs"],
                    "sha256": sha,
                    "threads": row["threads"],
                    "nodes": [],
                    "op_types": [],
                },
            )
            entry["times_us"].append(layer["time_us"])
            for node, op_type in zip(layer["nodes"], layer["op_types"], strict=True):
                if node not in entry["nodes"]:
                    entry["nodes"].append(node)
                    entry["op_types"].append(op_type)
    records: list[dict[str, object]] = []
    for entry in groups.values():
        times_us = entry.pop("times_us")
        time_ms = float(statistics.median(times_us)) / 1000.0
        macs = int(entry["macs"])
        nodes = entry.pop("nodes")
        op_types = entry.pop("op_types")
        records.append(
            {
                **entry,
                "time_ms": time_ms,
                "flops_per_s": 2.0 * macs / (time_ms / 1000.0) if time_ms > 0 else math.nan,
                "trials": len(times_us),
                "nodes": ",".join(nodes),
                "op_types": ",".join(op_types),
            }
        )
    columns = [
        "run_id",
        "device",
        "name",
        "layer",
        "kind",
        "time_ms",
        "macs",
        "flops_per_s",
        "sha256",
        "threads",
        "trials",
        "nodes",
        "op_types",
    ]
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(records, columns=columns)
    for column in ("run_id", "macs", "threads", "trials"):
        frame[column] = frame[column].astype("Int64")
    for column in ("time_ms", "flops_per_s"):
        frame[column] = frame[column].astype("float64")
    return frame


# -- aggregation helpers -------------------------------------------------------------------


def _union_columns(first: list[str], records: list[dict[str, object]]) -> list[str]:
    columns = list(first)
    for record in records:
        columns.extend(key for key in record if key not in columns)
    return columns


def _guard_flags(document: Mapping[str, Any]) -> str:
    """The flags ``results.guards.judge_trial`` gives the trial's guard record (comma list)."""
    from results.guards import judge_trial

    guards = document.get("guards")
    return ",".join(judge_trial(guards if isinstance(guards, Mapping) else None).flags)


def _trial_summary(record: Measurement) -> Summary:
    from results.stats import summarize, summarize_reported

    if record.samples_ms:
        return summarize(record.samples_ms, record.min_samples)
    return summarize_reported(record.reported_ms, n=record.iterations or 0)


def _model_name(row: Row, document: Mapping[str, Any]) -> str:
    if row["name"]:
        return str(row["name"])
    model_path = as_mapping(document.get("model")).get("path")
    if isinstance(model_path, str) and model_path:
        return PurePath(model_path.replace("\\", "/")).stem
    return str(row["model_sha256"])[:12]


def _spec_card_of(row: Row, make: Callable[..., Mapping[str, Any]]) -> Mapping[str, Any]:
    """The card of one of our generated models from its row, or an empty card."""
    alpha, resolution, variant, kernel = (
        row["alpha"],
        row["resolution"],
        row["variant"],
        row["kernel"],
    )
    if alpha is None or resolution is None or variant not in ("separable", "standard"):
        return {}
    return make(float(alpha), int(resolution), str(variant), int(kernel or 3))


def _cpus(key: str) -> str | None:
    cpus = as_mapping(load_stored_json(key, "a measurement", "configuration key")).get("cpus")
    if isinstance(cpus, list):
        return ",".join(str(cpu) for cpu in cpus)
    return None if cpus is None else str(cpus)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _maximum(values: Sequence[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _aggregate(rows: list[Row]) -> dict[str, object]:
    from results.stats import summarize, summarize_reported

    first = rows[0]
    documents = [decode_document(row) for row in rows]
    ok = [doc for row, doc in zip(rows, documents, strict=True) if row["status"] == "ok"]
    records = [Measurement.from_document(doc) for doc in ok]
    pooled: list[float] = []
    requested = 0
    for record in records:
        pooled.extend(record.samples_ms)
        requested += record.min_samples or 0
    trial_summaries = [_trial_summary(record) for record in records]
    summary: Summary
    if pooled:
        summary = summarize(pooled, requested or None)
    else:
        reported: dict[str, float] = {}
        for key, attribute in (
            ("p50", "median_ms"),
            ("p90", "p90_ms"),
            ("p99", "p99_ms"),
            ("mean", "mean_ms"),
            ("min", "min_ms"),
            ("max", "max_ms"),
        ):
            value = _median([getattr(s, attribute) for s in trial_summaries])
            if value is not None:
                reported[key] = value
        summary = summarize_reported(reported, n=sum(s.n for s in trial_summaries))
    timings = [as_mapping(doc.get("timings")) for doc in ok]
    memory = [as_mapping(doc.get("memory")) for doc in ok]
    versions = sorted(
        {str(v) for doc in ok if (v := as_mapping(doc.get("runtime")).get("version")) is not None}
    )
    runtime_version = ",".join(versions) if versions else first["run_runtime_version"]
    failed = len(rows) - len(ok)
    status = "ok" if failed == 0 else ("failed" if not ok else "partial")
    reasons = sorted(
        {str(row["reason"]) for row in rows if row["status"] == "failed" and row["reason"]}
    )
    model_document = documents[0] if documents else {}
    from results.reliability import cell_reliability

    trust = cell_reliability(ok, trial_summaries, summary.flags)
    return {
        "run_id": first["run_id"],
        "device": first["device"],
        "runtime_version": runtime_version,
        "name": _model_name(first, model_document),
        "alpha": first["alpha"],
        "resolution": first["resolution"],
        "variant": first["variant"],
        "kernel": first["kernel"],
        "precision": first["precision"],
        "threads": first["threads"],
        "trials": len(rows),
        "p50_ms": summary.median_ms,
        "p90_ms": summary.p90_ms,
        "p99_ms": summary.p99_ms,
        "mean_ms": summary.mean_ms,
        "std_ms": summary.std_ms,
        "min_ms": summary.min_ms,
        "ci_low_ms": trust["ci_low_ms"],
        "ci_high_ms": trust["ci_high_ms"],
        "ci_reason": trust["ci_reason"],
        "spread": trust["spread"],
        "within_ci_low_ms": summary.ci_low_ms,
        "within_ci_high_ms": summary.ci_high_ms,
        "samples": summary.n,
        "peak_rss_bytes": _maximum([as_integer(m.get("peak_rss_end_bytes")) for m in memory]),
        "load_ms": _median([as_number(t.get("session_create_ms")) for t in timings]),
        "first_ms": _median([as_number(t.get("first_inference_ms")) for t in timings]),
        "macs": first["macs"],
        "params": first["params"],
        "status": status,
        "campaign": first.get("campaign"),
        "label": first["label"],
        "device_kind": first["device_kind"],
        "sha256": first["model_sha256"],
        "config_key": first["config_key"],
        "cpus": _cpus(first["config_key"]),
        "max_ms": summary.max_ms,
        "cv": summary.cv,
        "flags": trust["flags"] if ok else "",
        "unreliable": trust["unreliable"] if ok else "",
        "outliers_low": summary.outliers_low,
        "outliers_high": summary.outliers_high,
        "failed_trials": failed,
        "reasons": "; ".join(reasons),
        "peak_rss_load_bytes": _maximum(
            [as_integer(m.get("peak_rss_after_load_bytes")) for m in memory]
        ),
        "weight_bytes": first["weight_bytes"],
        "peak_activation_bytes": first["peak_activation_bytes"],
        "file_bytes": first["file_bytes"]
        if first["file_bytes"] is not None
        else as_integer(as_mapping(model_document.get("model")).get("file_bytes")),
        "trial_medians_ms": [s.median_ms for s in trial_summaries if s.median_ms is not None],
        "hottest_c": trust["hottest_c"],
        "other_load": trust["other_load"],
        "cooldown_s": trust["cooldown_s"],
        "trial_reference_ms": trust["trial_reference_ms"],
        "device_state": trust["device_state"],
        "pin_command": trust["pin_command"],
    }


def _grid_order(record: Mapping[str, object]) -> tuple[object, ...]:
    """Run, then the grid (alpha, resolution; foreign models last), then name and threads."""

    def number(key: str) -> tuple[bool, float]:
        value = record.get(key)
        return (True, 0.0) if not isinstance(value, (int, float)) else (False, float(value))

    return (
        record["run_id"],
        str(record.get("variant") or "~"),
        number("alpha"),
        number("resolution"),
        str(record["name"]),
        number("threads"),
        str(record["config_key"]),
    )


def _typed_frame(records: list[dict[str, object]], columns: list[str]) -> pd.DataFrame:
    """A frame with stable dtypes even when empty: Int64 / float64 / object columns."""
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(records, columns=columns)
    for column in columns:
        if column in _INT_COLUMNS or column in ("id", "trial"):
            frame[column] = frame[column].astype("Int64")
        elif column in _FLOAT_COLUMNS:
            frame[column] = frame[column].astype("float64")
        elif column in ("samples_ms", "trial_medians_ms", "trial_reference_ms"):
            frame[column] = frame[column].astype(object)
    return frame
