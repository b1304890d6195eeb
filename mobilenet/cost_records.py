"""A model's cost as records: the per-node rows, the whole JSON document and the line on an
int8 or fp16 model's fidelity to its fp32 parent (what ``mnbench cost`` writes as CSV, JSON
or a table).
"""

from __future__ import annotations

from pathlib import Path

from mobilenet.cost import CONVENTIONS, ModelCost
from mobilenet.precision import Fidelity

NODE_COLUMNS = (
    "name",
    "op_type",
    "kind",
    "macs",
    "params",
    "weight_bytes",
    "input_bytes",
    "output_bytes",
    "flop_per_byte",
    "output_shape",
)


def node_rows(cost: ModelCost) -> list[dict[str, object]]:
    """One record per node (``NODE_COLUMNS``)."""
    return [
        {
            "name": n.name,
            "op_type": n.op_type,
            "kind": n.kind,
            "macs": n.macs,
            "params": n.params,
            "weight_bytes": n.weight_bytes,
            "input_bytes": n.input_bytes,
            "output_bytes": n.output_bytes,
            "flop_per_byte": round(n.intensity_flop_per_byte, 3),
            "output_shape": "x".join(map(str, n.output_shape)) if n.output_shape else "",
        }
        for n in cost.nodes
    ]


def fidelity_document(fidelity: Fidelity | None) -> dict[str, object] | None:
    """The fidelity as a JSON object (None for an fp32 model)."""
    if fidelity is None:
        return None
    return {
        "parent": fidelity.parent,
        "n_inputs": fidelity.n_inputs,
        "seed": fidelity.seed,
        "top1_agreement": fidelity.top1_agreement,
        "top5_overlap": fidelity.top5_overlap,
        "cosine": fidelity.cosine,
    }


def fidelity_line(fidelity: Fidelity) -> str:
    """The fidelity in one line."""
    return (
        f"fidelity to {fidelity.parent} on {fidelity.n_inputs} held-out inputs: "
        f"top-1 agreement {100 * fidelity.top1_agreement:.1f} %, "
        f"top-5 overlap {100 * fidelity.top5_overlap:.1f} %, cosine {fidelity.cosine:.6f}"
    )


def cost_document(
    path: Path, cost: ModelCost, fidelity: Fidelity | None = None
) -> dict[str, object]:
    """The JSON document of ``mnbench cost --format json``."""
    total = cost.total_macs or 1
    return {
        "model": str(path),
        "conventions": CONVENTIONS,
        "notes": list(cost.notes),
        "totals": {
            "macs": cost.total_macs,
            "flops": 2 * cost.total_macs,
            "params": cost.total_params,
            "weight_bytes": cost.total_weight_bytes,
            "peak_activation_bytes": cost.peak_activation_bytes,
        },
        "fidelity": fidelity_document(fidelity),
        "mac_share_by_kind": {k: v / total for k, v in cost.macs_by_kind().items() if v},
        "nodes": node_rows(cost),
        "separable_blocks": [
            {
                "depthwise": b.depthwise,
                "pointwise": b.pointwise,
                "M": b.in_channels,
                "N": b.out_channels,
                "D_K": b.kernel,
                "stride": b.stride,
                "D_F": b.in_size,
                "depthwise_macs": b.depthwise_macs,
                "pointwise_macs": b.pointwise_macs,
                "standard_macs": b.standard_macs,
                "predicted_ratio": b.predicted_ratio,
                "mac_ratio": b.mac_ratio,
            }
            for b in cost.blocks
        ],
    }
