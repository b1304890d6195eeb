"""``mnbench generate``: write the grid's ONNX models and ``models.csv``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.generator import generate, write_models_csv
from harness.grid import add_grid_arguments, specs_from_args
from harness.table import format_table

EXAMPLES = """examples:
  mnbench generate                                  the 16-cell grid into ./models
  mnbench generate --alpha 0.5 --rho 0.714          one model, resolution round(224*0.714)=160
  mnbench generate --variant separable standard --alpha 1.0 --resolution 224
  mnbench generate --kernel 3 5 7 --out /tmp/models
"""


def default_models_dir() -> Path:
    return Path(os.environ.get("MNBENCH_MODELS", "models"))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "generate",
        help="write MobileNetV1 ONNX models for a grid",
        description="Generate MobileNetV1 ONNX models (opset 13, BN folded, seeded He-normal "
        "weights; the same spec gives byte-identical files) and DIR/models.csv.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_grid_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default ./models, or $MNBENCH_MODELS)",
    )


def run(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    out_dir: Path = args.out or default_models_dir()
    models = []
    for spec in specs:
        models.append(generate(spec, out_dir))
    csv_path = write_models_csv(out_dir, models)
    rows = [
        [
            m.spec.name,
            m.spec.alpha,
            m.spec.resolution,
            m.spec.variant,
            m.spec.kernel,
            m.macs / 1e6,
            m.params / 1e6,
            m.file_bytes / 2**20,
        ]
        for m in models
    ]
    print(
        format_table(
            [
                "model",
                "alpha",
                "resolution",
                "variant",
                "D_K",
                "MACs (M)",
                "params (M)",
                "file (MiB)",
            ],
            rows,
        )
    )
    print(f"wrote {len(models)} models and {csv_path}", file=sys.stderr)
    return 0
