"""``mnbench cost``: the per-layer cost table of any ONNX file, and for an int8 or fp16 model
made by ``mnbench generate`` its fidelity to the fp32 parent (``mnbench.fidelity`` metadata)."""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

from harness.commands import SUMMARIES
from mobilenet.cost import CONVENTIONS, ModelCost, analyze_model, load_model_file
from mobilenet.errors import UserError
from mobilenet.precision import Fidelity, fidelity_of_model
from mobilenet.table import format_table, json_text
from mobilenet.validate import INT64_MAX, quoted

MAX_INPUT_ELEMENTS = 2**31 - 1
"""Elements of one input a ``--shape`` may give (onnxruntime's tensors index with int32 in
places; 8 GiB of float32)."""

EXAMPLES = """examples:
  mnbench cost models/mobilenet_v1_1.0_224.onnx
  mnbench cost resnet50.onnx --shape input=8x3x224x224 --format csv > costs.csv
  mnbench cost models/mobilenet_v1_0.5_160.onnx --format json
"""

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


def parse_shape(text: str) -> tuple[str, list[int]]:
    """``NAME=1x3x224x224`` as (name, dims), each dim a positive int64, the whole input at most
    ``MAX_INPUT_ELEMENTS`` elements."""
    name, sep, dims = text.partition("=")
    pieces = dims.lower().replace(",", "x").split("x")
    values = [int(p) for p in pieces if p.strip().isdigit() and len(p.strip()) <= 19]
    if not sep or not name or len(values) != len(pieces) or not values or min(values) <= 0:
        raise UserError(
            f"--shape {quoted(text)} is not NAME=DIMS of positive whole numbers; "
            "write e.g. input=1x3x224x224"
        )
    if any(v > INT64_MAX for v in values) or math.prod(values) > MAX_INPUT_ELEMENTS:
        raise UserError(
            f"--shape {quoted(text)} has {math.prod(values):.3g} elements, over the limit of "
            f"{MAX_INPUT_ELEMENTS:,}; give a smaller shape"
        )
    return name, values


def parse_shapes(texts: list[str]) -> dict[str, list[int]]:
    """Every ``--shape``; a name given twice is refused."""
    shapes: dict[str, list[int]] = {}
    for text in texts:
        name, dims = parse_shape(text)
        if name in shapes:
            raise UserError(f"--shape {name} is given twice; give each input once")
        shapes[name] = dims
    return shapes


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cost",
        help=SUMMARIES["cost"],
        description="Per-node MACs, parameters, weight and activation bytes and arithmetic "
        "intensity, model totals, peak activation memory and the separable blocks' predicted "
        "cost ratio 1/N + 1/D_K². Works on any ONNX file. Conventions: " + CONVENTIONS,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="an .onnx file")
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="fix an input's shape (symbolic dimensions are 1 otherwise)",
    )
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def node_rows(cost: ModelCost) -> list[dict[str, object]]:
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
    return (
        f"fidelity to {fidelity.parent} on {fidelity.n_inputs} held-out inputs: "
        f"top-1 agreement {100 * fidelity.top1_agreement:.1f} %, "
        f"top-5 overlap {100 * fidelity.top5_overlap:.1f} %, cosine {fidelity.cosine:.6f}"
    )


def cost_document(
    path: Path, cost: ModelCost, fidelity: Fidelity | None = None
) -> dict[str, object]:
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


def run(args: argparse.Namespace) -> int:
    shapes = parse_shapes(args.shape)
    path: Path = args.model
    model = load_model_file(path)
    cost = analyze_model(model, shapes)
    fidelity = fidelity_of_model(model)
    if args.format == "json":
        print(json_text(cost_document(path, cost, fidelity)))
        return 0
    rows = node_rows(cost)
    if args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=NODE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(buffer.getvalue(), end="")
        return 0
    print(
        format_table(
            [
                "layer",
                "op",
                "kind",
                "MACs (M)",
                "params (K)",
                "weights (KiB)",
                "act in (KiB)",
                "act out (KiB)",
                "FLOP/byte",
                "output",
            ],
            [
                [
                    n.name,
                    n.op_type,
                    n.kind,
                    n.macs / 1e6,
                    n.params / 1e3,
                    n.weight_bytes / 1024,
                    n.input_bytes / 1024,
                    n.output_bytes / 1024,
                    round(n.intensity_flop_per_byte, 3),
                    "x".join(map(str, n.output_shape)) if n.output_shape else "",
                ]
                for n in cost.nodes
                if n.macs or n.params
            ],
        )
    )
    total = cost.total_macs or 1
    shares = ", ".join(f"{k} {100 * v / total:.2f} %" for k, v in cost.macs_by_kind().items() if v)
    print()
    print(
        f"total: {cost.total_macs:,} MACs ({2 * cost.total_macs / 1e9:.3f} GFLOPs), "
        f"{cost.total_params:,} params, {cost.total_weight_bytes / 2**20:.2f} MiB weights, "
        f"peak activations {cost.peak_activation_bytes / 2**20:.2f} MiB"
    )
    print(f"MAC share by kind: {shares}")
    if fidelity is not None:
        print(fidelity_line(fidelity))
    if cost.blocks:
        print()
        print(
            format_table(
                ["block", "M", "N", "D_K", "stride", "D_F", "predicted 1/N+1/D_K²", "MAC ratio"],
                [
                    [
                        b.depthwise.rsplit(".", 1)[0],
                        b.in_channels,
                        b.out_channels,
                        b.kernel,
                        b.stride,
                        b.in_size,
                        b.predicted_ratio,
                        b.mac_ratio,
                    ]
                    for b in cost.blocks
                ],
            )
        )
    for note in cost.notes:
        print(f"note: {note}")
    print(f"conventions: {CONVENTIONS}")
    return 0
