"""What generating one model costs in bytes, by estimate, before anything is built.

Owns the generation memory estimate and the refusal of a model too large to write or to
build (``check_generation_memory``): the command line applies it to every model it is asked
for (``--max-memory-mib``), and a stored run's model specs are held to it when read back.
"""

from __future__ import annotations

from mobilenet.architecture import INPUT_CHANNELS, scaled_layers
from mobilenet.errors import UserError
from mobilenet.precision import DEFAULT_CALIBRATION_IMAGES, DEFAULT_FIDELITY_INPUTS
from mobilenet.spec import ModelSpec

DEFAULT_MAX_MEMORY_MIB = 4096
"""What one model's generation may allocate by estimate (``--max-memory-mib`` raises it)."""
PROTOBUF_LIMIT_BYTES = 2**31 - 1
"""An ONNX file without external data is one protobuf message: at most 2 GiB."""
WEIGHT_COPIES = 7
"""Peak memory of a generation over its fp32 weight bytes (seeded float64 draws, float32
arrays, the protobuf message, the checker's copy, the serialised bytes); docs/cost-model.md
gives the measurement behind it."""


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
