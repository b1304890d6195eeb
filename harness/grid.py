"""The alpha x resolution grid: the CLI flags shared by ``generate``, ``run`` and friends.

Default: the paper's and TF-Slim's 16 cells, alpha in {1.0, 0.75, 0.5, 0.25} x resolution in
{224, 192, 160, 128}, separable, D_K = 3, fp32. ``--precision`` adds int8 and fp16 variants
of every cell (see ``harness/precision.py``).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import cast

from harness.errors import UserError
from harness.spec import (
    ACTIVATIONS,
    DEFAULT_ALPHAS,
    DEFAULT_RESOLUTIONS,
    PRECISIONS,
    VARIANTS,
    Activation,
    ModelSpec,
    Precision,
    Variant,
    resolution_from_rho,
)


def _number(kind: type[float] | type[int], flag: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} {text!r} is not a {'whole ' if kind is int else ''}number"
            ) from None

    return parse


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("grid (default: the 16-cell alpha x resolution grid)")
    group.add_argument(
        "--alpha",
        nargs="+",
        type=_number(float, "--alpha"),
        metavar="A",
        help="width multipliers, 0 < A <= 2 (default: 1.0 0.75 0.5 0.25)",
    )
    res = group.add_mutually_exclusive_group()
    res.add_argument(
        "--resolution",
        nargs="+",
        type=_number(int, "--resolution"),
        metavar="R",
        help="input sizes in pixels, whole numbers >= 32 (default: 224 192 160 128)",
    )
    res.add_argument(
        "--rho",
        nargs="+",
        type=_number(float, "--rho"),
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
        type=_number(int, "--kernel"),
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
    group.add_argument(
        "--keep-bn",
        action="store_true",
        help="keep BatchNormalization nodes instead of folding them into convs",
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
    return list(specs.values())
