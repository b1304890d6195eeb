"""The alpha x resolution grid: the CLI flags shared by ``generate``, ``run`` and friends.

Default: the paper's and TF-Slim's 16 cells, alpha in {1.0, 0.75, 0.5, 0.25} x resolution in
{224, 192, 160, 128}, separable, D_K = 3, fp32. ``--precision`` adds int8 and fp16 variants
of every cell (see ``mobilenet/precision.py``).
"""

from __future__ import annotations

import argparse
import itertools
import math
from typing import cast

from mobilenet.errors import UserError
from mobilenet.footprint import DEFAULT_MAX_MEMORY_MIB, check_generation_memory
from mobilenet.spec import (
    ACTIVATIONS,
    BASE_RESOLUTION,
    DEFAULT_ALPHAS,
    DEFAULT_RESOLUTIONS,
    KERNELS,
    MAX_ALPHA,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    PRECISIONS,
    VARIANTS,
    Activation,
    ModelSpec,
    Precision,
    Variant,
    resolution_from_rho,
)
from mobilenet.validate import float_arg, int_arg, note

MAX_GRID_MODELS = 10_000
"""Models one grid may name (the 16-cell default x variants x kernels x precisions fits)."""


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("grid (default: the 16-cell alpha x resolution grid)")
    group.add_argument(
        "--alpha",
        nargs="+",
        type=float_arg("--alpha", high=MAX_ALPHA),
        metavar="A",
        help="width multipliers, 0 < A <= 2 (default: 1.0 0.75 0.5 0.25)",
    )
    res = group.add_mutually_exclusive_group()
    res.add_argument(
        "--resolution",
        nargs="+",
        type=int_arg("--resolution", MIN_RESOLUTION, MAX_RESOLUTION),
        metavar="R",
        help="input sizes in pixels, whole numbers >= 32 (default: 224 192 160 128)",
    )
    res.add_argument(
        "--rho",
        nargs="+",
        type=float_arg("--rho", high=MAX_RESOLUTION / BASE_RESOLUTION),
        metavar="P",
        help="resolution multipliers; resolution = round(224 * P)",
    )
    group.add_argument(
        "--variant",
        nargs="+",
        choices=VARIANTS,
        metavar="V",
        help="separable (MobileNet) and/or standard (the paper's Conv MobileNet); "
        "default separable",
    )
    group.add_argument(
        "--kernel",
        nargs="+",
        type=int_arg("--kernel", 1, max(KERNELS)),
        metavar="K",
        help="depthwise kernel size D_K, odd, 1-11 (default 3)",
    )
    group.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISIONS,
        metavar="P",
        help="fp32, int8 (static QDQ quantisation, per-channel weights) and/or fp16 "
        "(float32 inputs and outputs); int8 and fp16 are derived from the fp32 model, "
        "written beside it (default fp32)",
    )
    group.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu6",
        help="activation after every conv (default relu6)",
    )
    add_memory_limit_argument(group)
    group.add_argument(
        "--keep-bn",
        action="store_true",
        help="keep BatchNormalization nodes instead of folding them into convs",
    )


def add_memory_limit_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--max-memory-mib",
        type=int_arg("--max-memory-mib", 1, 2**40),
        default=DEFAULT_MAX_MEMORY_MIB,
        metavar="MIB",
        help="refuse a model whose generation is estimated to need more memory than this "
        f"(default {DEFAULT_MAX_MEMORY_MIB})",
    )


def specs_from_args(args: argparse.Namespace) -> list[ModelSpec]:
    """Every spec of the grid the flags describe, in a stable order, without duplicates."""
    alphas = args.alpha or list(DEFAULT_ALPHAS)
    if args.rho:
        resolutions = [resolution_from_rho(r) for r in args.rho]
    else:
        resolutions = args.resolution or list(DEFAULT_RESOLUTIONS)
    variants = cast(list[Variant], args.variant or ["separable"])
    kernels = args.kernel or [3]
    precisions = cast(list[Precision], getattr(args, "precision", None) or ["fp32"])
    cells = math.prod(
        len(set(values)) for values in (precisions, variants, kernels, alphas, resolutions)
    )
    if cells > MAX_GRID_MODELS:
        raise UserError(
            f"the grid has {cells:,} models, over the limit of {MAX_GRID_MODELS:,}; give fewer "
            "--alpha, --resolution, --kernel, --variant or --precision values"
        )
    specs: dict[str, ModelSpec] = {}
    for precision, variant, kernel, alpha, resolution in itertools.product(
        precisions, variants, kernels, alphas, resolutions
    ):
        spec = ModelSpec(
            alpha=alpha,
            resolution=resolution,
            variant=variant,
            kernel=kernel,
            activation=cast(Activation, args.activation),
            fold_bn=not args.keep_bn,
            precision=precision,
        )
        specs.setdefault(spec.name, spec)
    if not specs:
        raise UserError("the grid is empty; give at least one --alpha and --resolution")
    for flag, values in (
        ("--alpha", args.alpha),
        ("--resolution", args.resolution),
        ("--rho", args.rho),
        ("--variant", args.variant),
        ("--kernel", args.kernel),
        ("--precision", getattr(args, "precision", None)),
    ):
        if values and len(set(values)) < len(values):
            note(f"{flag} repeats a value; each model is generated and measured once")
    limit_mib = getattr(args, "max_memory_mib", DEFAULT_MAX_MEMORY_MIB)
    for spec in specs.values():
        check_generation_memory(spec, limit_mib)
    return list(specs.values())
