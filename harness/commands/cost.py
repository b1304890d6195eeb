"""``mnbench cost``: the per-layer cost table of any ONNX file, and for an int8 or fp16 model
made by ``mnbench generate`` its fidelity to the fp32 parent (``mnbench.fidelity`` metadata);
the records are ``mobilenet.cost_records``."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.commands.models import add_shape_argument, parse_shapes
from mobilenet.cost import CONVENTIONS, analyze_model, load_model_file
from mobilenet.cost_records import NODE_COLUMNS, cost_document, fidelity_line, node_rows
from mobilenet.precision import fidelity_of_model
from mobilenet.table import format_table, json_text

EXAMPLES = """examples:
  mnbench cost models/mobilenet_v1_1.0_224.onnx
  mnbench cost resnet50.onnx --shape input=8x3x224x224 --format csv > costs.csv
  mnbench cost models/mobilenet_v1_0.5_160.onnx --format json
"""


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
    add_shape_argument(parser, "fix an input's shape (symbolic dimensions are 1 otherwise)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    shapes = parse_shapes(args.shape)
    path: Path = args.model
    model = load_model_file(path)
    cost = analyze_model(model, shapes)
    fidelity = fidelity_of_model(model)
    if args.format == "json":
        print(json_text(cost_document(path, cost, fidelity)))
        return EXIT_OK
    rows = node_rows(cost)
    if args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=NODE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(buffer.getvalue(), end="")
        return EXIT_OK
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
    return EXIT_OK
