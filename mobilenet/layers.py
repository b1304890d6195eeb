"""Per-layer analysis: does the measured cost follow 1/N + 1/D_K²?

Owns three things, all pure (no measuring, no store access):

- **cost cards**: which layer each graph node belongs to, with the layer's kind, MACs and
  bytes moved (from ``mobilenet.cost``). A node that carries MACs (Conv, Gemm, MatMul) is its
  own layer; an activation or batch norm whose one activation input comes from a layer's
  node joins that layer (onnxruntime fuses them anyway); anything else is a layer of its own
  of kind ``other``. For our generated models the card follows from the architecture table
  (``spec_card``); for anyone's graph from the graph (``layer_card``).
- **profile mapping**: onnxruntime renames and fuses nodes (``block1.depthwise.relu6_nchwc``,
  ``pool_nchwc``; a fused node may also take the name of its output tensor) and inserts its
  own (``ReorderOutput_token_56``). A profiled node belongs to the graph node (or tensor)
  whose name is its longest prefix ending at a non-alphanumeric character; nodes that match
  none are ``unassigned`` and reported, never dropped.
- **the layer table**: for each block of the layer probes (``mobilenet.probes``), the predicted
  ratio 1/N + 1/D_K² (Howard et al. 2017, eq. 5), the exact MAC ratio, the measured times of
  the standard layer, the factorised pair and its parts, the measured ratio separable /
  standard and the achieved GFLOP/s (FLOPs = 2 × MACs) — the measured counterpart of the
  paper's Table 2 and Table 3 argument, and the points of a roofline (Williams et al. 2009).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mobilenet.architecture import CLASSES, scaled_layers

if TYPE_CHECKING:
    import onnx
    import pandas as pd

    from mobilenet.cost import ModelCost

UNASSIGNED = "unassigned"
PROBE_VARIANT_PREFIX = "probe-"
"""Layer probes are stored with variant ``probe-<role>`` (``mobilenet.probes``)."""
HEAD_NODES: tuple[str, ...] = ("pool", "flatten", "softmax")
"""The generator's head nodes without MACs (``mobilenet.generator.GraphBuilder.head``)."""

LAYER_COLUMNS: tuple[str, ...] = (
    "run_id",
    "device",
    "threads",
    "alpha",
    "resolution",
    "block",
    "M",
    "N",
    "D_F",
    "stride",
    "D_K",
    "predicted_ratio",
    "mac_ratio",
    "standard_ms",
    "separable_ms",
    "depthwise_ms",
    "pointwise_ms",
    "measured_ratio",
    "parts_ratio",
    "standard_gflop_s",
    "separable_gflop_s",
    "depthwise_gflop_s",
    "pointwise_gflop_s",
    "standard_ci_rel",
    "separable_ci_rel",
    "depthwise_ci_rel",
    "pointwise_ci_rel",
    "standard_macs",
    "separable_macs",
    "depthwise_macs",
    "pointwise_macs",
    "standard_intensity",
    "separable_intensity",
    "depthwise_intensity",
    "pointwise_intensity",
    "standard_params",
    "separable_params",
    "standard_weight_bytes",
    "separable_weight_bytes",
    "standard_peak_rss_bytes",
    "separable_peak_rss_bytes",
    "peak_gflop_s",
    "bandwidth_gb_s",
)
"""Columns of ``layer_table``: one row per run × threads × α × resolution × D_K × block.

``*_intensity`` is FLOP per byte of the probe's convs (weights + inputs + outputs);
``*_ci_rel`` the half-width of the 95 % CI of the median over the median; ``*_params``,
``*_weight_bytes`` the probe graph's parameters and weight bytes (cost model) and
``*_peak_rss_bytes`` the measuring process's peak resident memory, for the standard layer
and its factorisation."""
MEMORY_ROLES: tuple[str, ...] = ("standard", "separable")
"""The roles whose parameters, weight bytes and peak RSS the table carries."""
ROLES: tuple[str, ...] = ("standard", "separable", "depthwise", "pointwise")


# ----------------------------------------------------------------------------- arithmetic


def measured_ratio(separable_ms: float, standard_ms: float) -> float:
    """Measured time of the factorised layer over the standard one (NaN when either is
    missing or not positive); the paper predicts 1/N + 1/D_K²."""
    if not (_positive(separable_ms) and _positive(standard_ms)):
        return math.nan
    return separable_ms / standard_ms


def parts_ratio(depthwise_ms: float, pointwise_ms: float, standard_ms: float) -> float:
    """(depthwise + pointwise time) / standard time, each part timed on its own."""
    if not (_positive(depthwise_ms) and _positive(pointwise_ms) and _positive(standard_ms)):
        return math.nan
    return (depthwise_ms + pointwise_ms) / standard_ms


def gflop_per_s(macs: float, time_ms: float) -> float:
    """Achieved GFLOP/s of ``macs`` multiply-adds in ``time_ms`` (FLOPs = 2 × MACs)."""
    if not (_positive(time_ms) and math.isfinite(macs)):
        return math.nan
    return 2.0 * macs / (time_ms * 1e-3) / 1e9


def predicted_ratio(out_channels: int, kernel: int) -> float:
    """1/N + 1/D_K² (Howard et al. 2017, eq. 5)."""
    return 1.0 / out_channels + 1.0 / kernel**2


def _positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


# ----------------------------------------------------------------------------- cost cards


def layer_card(cost: ModelCost, model: onnx.ModelProto | None = None) -> dict[str, Any]:
    """Which layer each graph node belongs to, and each layer's kind, MACs and bytes.

    With ``model`` given, activations and batch norms join the layer of the node that feeds
    them (one activation input only), and output tensor names map like their node's name;
    without it, every node without MACs is its own layer. JSON-ready:
    ``{"nodes": {node or tensor name: layer}, "layers": {layer: {...}}}``.
    """
    from mobilenet.cost import PASS_THROUGH_OPS

    producers: dict[str, str] = {}
    feeds: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    if model is not None:
        skip = {t.name for t in model.graph.initializer}
        skip |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
        for node, node_cost in zip(model.graph.node, cost.nodes, strict=True):
            for output in node.output:
                producers[output] = node_cost.name
            feeds[node_cost.name] = [i for i in node.input if i and i not in skip]
            outputs[node_cost.name] = [o for o in node.output if o]
    nodes: dict[str, str] = {}
    layers: dict[str, dict[str, Any]] = {}
    for node in cost.nodes:
        if node.op_type == "Constant":
            continue
        layer = node.name
        if node.macs == 0 and node.op_type in PASS_THROUGH_OPS:
            inputs = feeds.get(node.name, [])
            source = producers.get(inputs[0]) if len(inputs) == 1 else None
            if source is not None and source in nodes and nodes[source] in layers:
                candidate = nodes[source]
                if layers[candidate]["macs"] > 0:
                    layer = candidate
        nodes[node.name] = layer
        if layer == node.name:
            moved = node.weight_bytes + node.input_bytes + node.output_bytes
            layers[layer] = {
                "kind": node.kind,
                "op_type": node.op_type,
                "macs": node.macs,
                "bytes": moved,
                "intensity_flop_per_byte": node.intensity_flop_per_byte,
            }
    # onnxruntime names some fused nodes after the fused output tensor (``r1_nchwc`` for a
    # Conv + Relu whose Relu writes ``r1``): tensor names map to their producer's layer too.
    for name, tensors in outputs.items():
        if name in nodes:  # Constant nodes have no layer
            for tensor in tensors:
                nodes.setdefault(tensor, nodes[name])
    return {"nodes": nodes, "layers": layers}


def spec_card(
    alpha: float, resolution: int, variant: str, kernel: int, classes: int = CLASSES
) -> dict[str, Any]:
    """The card of one of our generated models, from the architecture table alone (no bytes:
    the graph is not rebuilt). Activations match their layer by name prefix."""
    nodes: dict[str, str] = {}
    layers: dict[str, dict[str, Any]] = {}
    for layer in scaled_layers(alpha, resolution, variant, kernel, classes):
        nodes[layer.name] = layer.name
        layers[layer.name] = {"kind": layer.role, "macs": layer.macs}
    for name in HEAD_NODES:
        nodes[name] = name
        layers[name] = {"kind": "other", "macs": 0}
    return {"nodes": nodes, "layers": layers}


def assign_layer(node: str, nodes: Mapping[str, str]) -> str | None:
    """The layer of a profiled node: that of the graph node whose name is its longest prefix
    ending at a non-alphanumeric character (``block1.depthwise.relu6_nchwc`` ->
    ``block1.depthwise``); None when no graph node's name is such a prefix."""
    best: str | None = None
    for name in nodes:
        if not name or not node.startswith(name):
            continue
        if len(node) > len(name) and node[len(name)].isalnum():
            continue
        if best is None or len(name) > len(best):
            best = name
    return None if best is None else nodes[best]


def profile_layers(
    profile: Mapping[str, Mapping[str, Any]], card: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One trial's per-node profile summed per layer; unassigned nodes one row each.

    Rows: ``layer, kind, time_us, macs, nodes (list), op_types (list)``.
    """
    nodes = _mapping(card.get("nodes"))
    layers = _mapping(card.get("layers"))
    grouped: dict[str, dict[str, Any]] = {}
    for node, raw in profile.items():
        entry = _mapping(raw)
        time_us = entry.get("median_us")
        if isinstance(time_us, bool) or not isinstance(time_us, (int, float)):
            continue
        layer = assign_layer(node, nodes)
        key = layer if layer is not None else f"{UNASSIGNED}\0{node}"
        info = _mapping(layers.get(layer)) if layer is not None else {}
        row = grouped.setdefault(
            key,
            {
                "layer": layer if layer is not None else UNASSIGNED,
                "kind": str(info.get("kind") or "other"),
                "time_us": 0.0,
                "macs": int(info.get("macs") or 0),
                "nodes": [],
                "op_types": [],
            },
        )
        row["time_us"] += float(time_us)
        row["nodes"].append(node)
        row["op_types"].append(str(entry.get("op_type") or ""))
    return list(grouped.values())


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# ----------------------------------------------------------------------------- the table


def layer_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Pair the probes of each block: one row per run × threads × α × resolution × D_K ×
    block with the columns of ``LAYER_COLUMNS``.

    ``probes`` has one row per probe result (``Store.probes_frame``): ``run_id, device,
    threads, role, block, kernel, alpha, resolution, in_channels, out_channels, in_size,
    stride, macs, p50_ms, ci_low_ms, ci_high_ms, intensity_flop_per_byte, peak_gflop_s,
    bandwidth_gb_s``; failed probes (no p50) leave their cells empty.
    """
    import pandas as pd

    if probes.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=list(LAYER_COLUMNS))
        return empty
    keys = ["run_id", "threads", "alpha", "resolution", "kernel", "block"]
    rows: list[dict[str, Any]] = []
    frame = probes[probes["role"].isin(ROLES)].copy()  # stem and head probes pair with none
    if frame.empty:
        nothing: pd.DataFrame = pd.DataFrame(columns=list(LAYER_COLUMNS))
        return nothing
    frame["threads"] = frame["threads"].astype("float64")
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        run_id, threads, alpha, resolution, kernel, block = key
        first = group.iloc[0]
        by_role = {str(r["role"]): r for r in group.to_dict("records")}
        out_channels = int(first["out_channels"])
        row: dict[str, Any] = {
            "run_id": int(run_id),
            "device": first["device"],
            "threads": None if math.isnan(threads) else int(threads),
            "alpha": float(alpha),
            "resolution": int(resolution),
            "block": int(block),
            "M": int(first["in_channels"]),
            "N": out_channels,
            "D_F": int(first["in_size"]),
            "stride": int(first["stride"]),
            "D_K": int(kernel),
            "predicted_ratio": predicted_ratio(out_channels, int(kernel)),
            "peak_gflop_s": _number(first.get("peak_gflop_s")),
            "bandwidth_gb_s": _number(first.get("bandwidth_gb_s")),
        }
        for role in ROLES:
            record = by_role.get(role, {})
            p50 = _number(record.get("p50_ms"))
            macs = _number(record.get("macs"))
            low, high = _number(record.get("ci_low_ms")), _number(record.get("ci_high_ms"))
            row[f"{role}_ms"] = p50
            row[f"{role}_macs"] = macs
            row[f"{role}_gflop_s"] = gflop_per_s(macs, p50)
            row[f"{role}_ci_rel"] = (high - low) / 2 / p50 if _positive(p50) else math.nan
            row[f"{role}_intensity"] = _number(record.get("intensity_flop_per_byte"))
            if role in MEMORY_ROLES:
                for column in ("params", "weight_bytes", "peak_rss_bytes"):
                    row[f"{role}_{column}"] = _number(record.get(column))
        row["mac_ratio"] = (
            row["separable_macs"] / row["standard_macs"]
            if _positive(row["standard_macs"])
            else math.nan
        )
        row["measured_ratio"] = measured_ratio(row["separable_ms"], row["standard_ms"])
        row["parts_ratio"] = parts_ratio(
            row["depthwise_ms"], row["pointwise_ms"], row["standard_ms"]
        )
        rows.append(row)
    table: pd.DataFrame = pd.DataFrame(rows, columns=list(LAYER_COLUMNS))
    ordered: pd.DataFrame = table.sort_values(["run_id", "D_K", "block"], kind="stable")
    result: pd.DataFrame = ordered.reset_index(drop=True)
    return result


def _number(value: object) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def table_rows(table: pd.DataFrame) -> Iterable[list[object]]:
    """The terminal table's rows (see ``TABLE_HEADERS``)."""
    for r in table.to_dict("records"):
        yield [
            r["block"],
            r["M"],
            r["N"],
            r["D_F"],
            r["stride"],
            r["D_K"],
            r["predicted_ratio"],
            r["mac_ratio"],
            r["standard_ms"],
            r["depthwise_ms"],
            r["pointwise_ms"],
            r["separable_ms"],
            r["measured_ratio"],
            r["standard_gflop_s"],
            r["depthwise_gflop_s"],
            r["pointwise_gflop_s"],
        ]


TABLE_HEADERS: tuple[str, ...] = (
    "block",
    "M",
    "N",
    "D_F",
    "s",
    "D_K",
    "pred 1/N+1/D_K²",
    "MAC ratio",
    "std ms",
    "dw ms",
    "pw ms",
    "sep ms",
    "meas ratio",
    "std GFLOP/s",
    "dw GFLOP/s",
    "pw GFLOP/s",
)
