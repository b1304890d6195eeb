"""Which models a run measures, from its flags: the grid (``harness.commands.grid``) or the
ONNX files of ``--model`` with the ``--shape`` of their symbolic inputs, checked before
anything is created (``model_choice``, for ``run`` and ``lab plan``); ``--shape`` is also
``cost``'s.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from mobilenet.errors import UserError
from mobilenet.validate import INT64_MAX, note, quoted

if TYPE_CHECKING:
    from harness.measure.requests import ModelChoice

MAX_INPUT_ELEMENTS = 2**31 - 1
"""Elements of one input a ``--shape`` may give (onnxruntime's tensors index with int32 in
places; 8 GiB of float32)."""


def add_model_file_arguments(parser: argparse.ArgumentParser) -> None:
    """--model FILE... (ONNX files instead of the grid) and --shape, for run and lab plan."""
    parser.add_argument(
        "--model",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="measure these ONNX files instead of the grid",
    )
    add_shape_argument(parser, "shape of a --model input with symbolic dimensions (else 1)")


def add_shape_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help=what)


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


def distinct_files(paths: list[Path]) -> list[Path]:
    """The ``--model`` files, each once (by resolved path), saying so when one repeats."""
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(path.resolve(), path)
    if len(seen) < len(paths):
        note("--model names a file more than once; each is measured once")
    return list(seen.values())


def model_choice(args: argparse.Namespace) -> ModelChoice:
    """The ``--model`` files (each loaded and costed with its ``--shape`` values: unknown
    names and bad files are refused), else the grid's models and their calibration."""
    from harness.commands.generate import calibration_from_args
    from harness.commands.grid import specs_from_args
    from harness.measure.requests import ModelChoice
    from mobilenet.cost import analyze_model, load_model_file

    if args.model:
        paths = distinct_files(args.model)
        shapes = parse_shapes(args.shape)
        for path in paths:
            analyze_model(load_model_file(path), shapes)
        return ModelChoice(paths=tuple(paths), shapes=shapes)
    if args.shape:
        raise UserError("--shape applies to --model files only; leave it out for the grid")
    specs = specs_from_args(args)
    return ModelChoice(specs=tuple(specs), calibration=calibration_from_args(args, specs))
