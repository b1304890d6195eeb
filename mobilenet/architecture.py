"""MobileNetV1 as data: one table of layer records and one width rule.

Source: Howard et al. 2017, "MobileNets" (arXiv:1704.04861), Table 1, with TF-Slim's strides
(``research/slim/nets/mobilenet_v1.py``, ``_CONV_DEFS``): the second-to-last separable block has
stride 1 (the paper's "Conv dw / s2" at 7x7x1024 is a known erratum). Width rule from TF-Slim:
``depth = max(int(d * depth_multiplier), min_depth)`` with ``min_depth = 8``.

The generator and the cost oracles walk this table; nothing else hard-codes the layer list.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_DEPTH = 8


@dataclass(frozen=True)
class Conv:
    """A full convolution (the stem, and every block of the "Conv MobileNet" baseline)."""

    kernel: int
    stride: int
    depth: int


@dataclass(frozen=True)
class DepthSepConv:
    """A depthwise convolution (kernel x kernel, one filter per channel) then a 1x1 pointwise."""

    kernel: int
    stride: int
    depth: int


CONV_DEFS: tuple[Conv | DepthSepConv, ...] = (
    Conv(kernel=3, stride=2, depth=32),
    DepthSepConv(kernel=3, stride=1, depth=64),
    DepthSepConv(kernel=3, stride=2, depth=128),
    DepthSepConv(kernel=3, stride=1, depth=128),
    DepthSepConv(kernel=3, stride=2, depth=256),
    DepthSepConv(kernel=3, stride=1, depth=256),
    DepthSepConv(kernel=3, stride=2, depth=512),
    DepthSepConv(kernel=3, stride=1, depth=512),
    DepthSepConv(kernel=3, stride=1, depth=512),
    DepthSepConv(kernel=3, stride=1, depth=512),
    DepthSepConv(kernel=3, stride=1, depth=512),
    DepthSepConv(kernel=3, stride=1, depth=512),
    DepthSepConv(kernel=3, stride=2, depth=1024),
    DepthSepConv(kernel=3, stride=1, depth=1024),
)
"""Stem then the 13 separable blocks; the head (global average pool, FC, softmax) follows."""

CLASSES = 1000
INPUT_CHANNELS = 3


def width(depth: int, alpha: float, min_depth: int = MIN_DEPTH) -> int:
    """Channels of a layer at width multiplier alpha (TF-Slim's rule)."""
    return max(int(depth * alpha), min_depth)


def same_output(size: int, stride: int) -> int:
    """Output size of a 'SAME'-padded convolution: ceil(size / stride)."""
    return -(-size // stride)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (begin, end): the extra pixel goes at the end."""
    total = max((same_output(size, stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Layer:
    """One concrete layer after scaling: what the generator builds and the cost oracles count.

    ``role`` is ``stem``, ``depthwise``, ``pointwise``, ``standard`` (a full conv replacing a
    separable block) or ``fc``. ``block`` is 0 for the stem, 1..13 for the blocks, 14 for fc.
    """

    name: str
    role: str
    block: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    in_size: int
    out_size: int

    @property
    def macs(self) -> int:
        per_output = (self.in_channels // self.groups) * self.kernel * self.kernel
        return self.out_size * self.out_size * self.out_channels * per_output

    @property
    def weight_count(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel * self.kernel


def scaled_layers(
    alpha: float,
    resolution: int,
    variant: str = "separable",
    kernel: int = 3,
    classes: int = CLASSES,
) -> list[Layer]:
    """The table scaled by alpha and resolution: every conv and the FC with concrete shapes.

    ``kernel`` replaces the 3x3 of the separable blocks (depthwise, or the full conv of the
    standard variant); the stem keeps its 3x3.
    """
    layers: list[Layer] = []
    channels = INPUT_CHANNELS
    size = resolution
    for index, record in enumerate(CONV_DEFS):
        out = width(record.depth, alpha)
        out_size = same_output(size, record.stride)
        if isinstance(record, Conv):
            layers.append(
                Layer(
                    "conv0",
                    "stem",
                    index,
                    channels,
                    out,
                    record.kernel,
                    record.stride,
                    1,
                    size,
                    out_size,
                )
            )
        elif variant == "standard":
            layers.append(
                Layer(
                    f"block{index}.conv",
                    "standard",
                    index,
                    channels,
                    out,
                    kernel,
                    record.stride,
                    1,
                    size,
                    out_size,
                )
            )
        else:
            layers.append(
                Layer(
                    f"block{index}.depthwise",
                    "depthwise",
                    index,
                    channels,
                    channels,
                    kernel,
                    record.stride,
                    channels,
                    size,
                    out_size,
                )
            )
            layers.append(
                Layer(
                    f"block{index}.pointwise",
                    "pointwise",
                    index,
                    channels,
                    out,
                    1,
                    1,
                    1,
                    out_size,
                    out_size,
                )
            )
        channels = out
        size = out_size
    layers.append(Layer("fc", "fc", len(CONV_DEFS), channels, classes, 1, 1, 1, 1, 1))
    return layers
