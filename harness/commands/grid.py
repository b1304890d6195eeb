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

from mobilenet.architecture import INPUT_CHANNELS, scaled_layers
from mobilenet.errors import UserError
from mobilenet.precision import DEFAULT_CALIBRATION_IMAGES, DEFAULT_FIDELITY_INPUTS
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

DEFAULT_MAX_MEMORY_MIB = 4096
"""What one model's generation may allocate by estimate (``--max-memory-mib`` raises it)."""
PROTOBUF_LIMIT_BYTES = 2**31 - 1
"""An ONNX file without external data is one protobuf message: at most 2 GiB."""
MAX_GRID_MODELS = 10_000
"""Models one grid may name (the 16-cell default x variants x kernels x precisions fits)."""
WEIGHT_COPIES = 7
"""Peak memory of a generation over its fp32 weight bytes (seeded float64 draws, float32
arrays, the protobuf message, the checker's copy, the serialised bytes); docs/cost-model.md
gives the measurement behind it."""


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


def weight_bytes(spec: ModelSpec) -> int:
    """Bytes of the fp32 weights of ``spec`` (every variant is derived from its fp32 parent),
    from the architecture table: nothing is built."""
    layers = scaled_layers(spec.alpha, spec.resolution, spec.variant, spec.kernel, spec.classes)
    count = sum(layer.weight_count + layer.out_channels for layer in layers)  # + biases
    if not spec.fold_bn:
        count += sum(4 * layer.out_channels for layer in layers)
    return 4 * count


def generation_memory_bytes(
    spec: ModelSpec, calibration_images: int = DEFAULT_CALIBRATION_IMAGES
) -> int:
    """An estimate of what generating ``spec`` allocates at its peak: the weights about
    ``WEIGHT_COPIES`` times, and for int8 and fp16 the images fed through the model and its
    largest pair of activations."""
    total = WEIGHT_COPIES * weight_bytes(spec)
    if spec.precision != "fp32":
        image = INPUT_CHANNELS * spec.resolution**2 * 4
        calibration = calibration_images if spec.precision == "int8" else 0
        total += (calibration + DEFAULT_FIDELITY_INPUTS) * image
        layers = scaled_layers(spec.alpha, spec.resolution, spec.variant, spec.kernel)
        total += max(
            4 * (layer.in_channels * layer.in_size**2 + layer.out_channels * layer.out_size**2)
            for layer in layers
        )
    return total


def check_generation_memory(
    spec: ModelSpec, limit_mib: int, calibration_images: int = DEFAULT_CALIBRATION_IMAGES
) -> None:
    """Refuse ``spec`` before it is built when it cannot be written or would need more memory
    than ``limit_mib`` by estimate (``calibration_images`` int8 calibration inputs)."""
    memory = generation_memory_bytes(spec, calibration_images)
    check_model_size(spec.name, weight_bytes(spec), memory, limit_mib)


def check_model_size(name: str, weights: int, memory: int, limit_mib: int) -> None:
    """Refuse a model of ``weights`` bytes whose generation needs ``memory`` bytes."""
    if weights > PROTOBUF_LIMIT_BYTES:
        raise UserError(
            f"{name} would hold {weights / 2**20:,.0f} MiB of weights, over the 2048 MiB "
            "an ONNX file can hold; lower --alpha or --kernel, or use --variant separable"
        )
    needed_mib = memory / 2**20
    if needed_mib > limit_mib:
        raise UserError(
            f"{name} needs about {needed_mib:,.0f} MiB to generate, over the limit of "
            f"{limit_mib:,} MiB; raise it with --max-memory-mib {int(needed_mib) + 1} or "
            "shrink the model"
        )
