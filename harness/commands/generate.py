"""``mnbench generate``: write the grid's ONNX models, ``models.csv`` and, for int8 and fp16
variants, ``fidelity.csv`` (each variant's agreement with its fp32 parent)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_OK
from harness.commands.grid import add_grid_arguments, specs_from_args
from harness.commands.options import default_models_dir, models_dir_flag
from mobilenet.errors import UserError
from mobilenet.footprint import DEFAULT_MAX_MEMORY_MIB, check_generation_memory
from mobilenet.generator import generate, write_fidelity_csv, write_models_csv
from mobilenet.precision import MAX_CALIBRATION_IMAGES, CalibrationSource
from mobilenet.spec import ModelSpec
from mobilenet.table import format_table
from mobilenet.validate import creatable_dir

EXAMPLES = """examples:
  mnbench generate                                  the 16-cell grid into ./models
  mnbench generate --alpha 0.5 --rho 0.714          one model, resolution round(224*0.714)=160
  mnbench generate --variant separable standard --alpha 1.0 --resolution 224
  mnbench generate --kernel 3 5 7 --out /tmp/models
  mnbench generate --precision fp32 int8 fp16 --alpha 0.25 --resolution 128
  mnbench generate --precision int8 --calibration ~/photos   calibrate on your JPEG/PNG files
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "generate",
        help=SUMMARIES["generate"],
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
    add_calibration_argument(parser)


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="DIR",
        help="calibrate int8 models on the JPEG/PNG files in DIR (the first "
        f"{MAX_CALIBRATION_IMAGES} by name; shorter side resized to the resolution, centre "
        "crop, ImageNet mean/std) instead of 32 seeded synthetic images; without it an int8 "
        "model already in the output directory keeps its calibration",
    )


def calibration_from_args(
    args: argparse.Namespace, specs: list[ModelSpec]
) -> CalibrationSource | None:
    """The calibration images, read and checked before any model file is written."""
    if args.calibration is None:
        return None
    if not any(spec.precision == "int8" for spec in specs):
        raise UserError("--calibration only applies to int8 models; add --precision int8")
    source = CalibrationSource.from_directory(args.calibration)
    limit_mib = getattr(args, "max_memory_mib", DEFAULT_MAX_MEMORY_MIB)
    for spec in specs:
        check_generation_memory(spec, limit_mib, source.count)
    return source


def run(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    out_dir: Path = creatable_dir(
        args.out or default_models_dir(), models_dir_flag(args.out, "--out")
    )
    calibration = calibration_from_args(args, specs)
    models = []
    for spec in specs:
        models.append(generate(spec, out_dir, calibration=calibration))
    csv_path = write_models_csv(out_dir, models)
    fidelity_path = write_fidelity_csv(out_dir, models)
    with_fidelity = any(m.fidelity is not None for m in models)
    rows = []
    for m in models:
        row: list[object] = [
            m.spec.name,
            m.spec.alpha,
            m.spec.resolution,
            m.spec.variant,
            m.spec.kernel,
            m.spec.precision,
            m.macs / 1e6,
            m.params / 1e6,
            m.file_bytes / 2**20,
        ]
        if with_fidelity:
            f = m.fidelity
            row += ["", ""] if f is None else [100 * f.top1_agreement, f.cosine]
        rows.append(row)
    headers = [
        "model",
        "alpha",
        "resolution",
        "variant",
        "D_K",
        "precision",
        "MACs (M)",
        "params (M)",
        "file (MiB)",
    ]
    if with_fidelity:
        headers += ["top-1 agree (%)", "cosine"]
    print(format_table(headers, rows))
    written = f"{csv_path} and {fidelity_path}" if with_fidelity else str(csv_path)
    print(f"wrote {len(models)} models and {written}", file=sys.stderr)
    return EXIT_OK
