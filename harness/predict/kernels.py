"""The kernels of a MobileNetV1 variant as onnxruntime's CPU provider executes them, and their
features: what the latency model (``harness.predict.estimator``) prices.

- **kernels**: the units onnxruntime's CPU provider executes for our family after fusion
  (conv + bias + Clip fuse into one NCHWc conv; the head is GlobalAveragePool, Gemm and
  Softmax): ``stem``, ``depthwise`` (with its ReLU6), ``pointwise``, ``standard`` (the
  baseline's full conv), ``pool``, ``fc``, ``softmax``. ``model_kernels`` lists them for any
  α, resolution, D_K and variant from the architecture table (no graph is built);
  ``variant_kernels`` and ``probe_graph_kernels`` place them in the layouts onnxruntime
  chose (``harness.predict.layouts``).
- **features**: per kernel, from its shapes: a count (per-kernel dispatch), MACs counted on
  channels rounded up to the layout's block (``block`` 1, 8 or 16: onnxruntime's NCHWc
  layout computes whole blocks of 8 or 16 channels on AVX2/AVX-512 machines), and the bytes
  it moves (input + output + weights). Depthwise and standard convs of stride 2 are their
  own kinds. Each row (one measured graph) adds its kernels' features, one per-inference
  overhead, and for a probe the layout boundaries it has and a whole model does not (the
  reorders into and out of NCHWc of the probe's input and output: count and bytes).
- **the roofline**: one kernel's bound from the device's GEMM and copy ceilings (Williams et
  al. 2009).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from harness.predict.layouts import Layouts, detect_layouts
from mobilenet.architecture import CLASSES, Layer, scaled_layers

FLOAT_BYTES: Final = 4

CONV_FEATURES: Final[tuple[str, ...]] = ("n", "kchannels", "mmacs", "mbytes")
CONV_KINDS: Final[tuple[str, ...]] = ("stem", "depthwise", "pointwise", "standard")
CONV_GROUPS: Final[tuple[str, ...]] = (
    "stem",
    "depthwise",
    "depthwise/s2",
    "pointwise",
    "standard",
    "standard/s2",
)
KIND_FEATURES: Final[dict[str, tuple[str, ...]]] = {
    **{group: CONV_FEATURES for group in CONV_GROUPS},
    **{f"{group}/nchw": CONV_FEATURES for group in CONV_GROUPS},
    "pool": ("mbytes",),
    "fc": ("mmacs",),
    "softmax": ("n",),
}
"""Feature columns per kernel kind. Pool, FC and softmax run once per model each, so their
constant per-kernel costs cannot be told apart: softmax's count carries the head's."""
GLOBAL_FEATURES: Final[tuple[str, ...]] = ("overhead:n", "boundary:n", "boundary:mbytes")
COLUMNS: Final[tuple[str, ...]] = (
    *(f"{kind}:{feature}" for kind, features in KIND_FEATURES.items() for feature in features),
    *GLOBAL_FEATURES,
)
"""The design matrix's columns, in order; a fitted model has one coefficient for each."""


@dataclass(frozen=True)
class Kernel:
    """One executed unit: its kind, the block it belongs to (0 stem, 14 head) and shapes."""

    kind: str
    block: int
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    name: str = ""
    """The layer's node name in our graphs (``conv0``, ``block3.depthwise``, ``fc``)."""
    layout: str = ""
    """``nchwc`` or ``nchw`` as onnxruntime's layout transformer decided; empty when not
    detected (a device whose runtime has no NCHWc layout: every conv is plain)."""

    @property
    def base_group(self) -> str:
        """Stride-2 depthwise and standard convs are their own kinds."""
        if self.kind in ("depthwise", "standard") and self.stride > 1:
            return f"{self.kind}/s2"
        return self.kind

    @property
    def group(self) -> str:
        """The regression's kind: the base kind, plus ``/nchw`` for a conv left in the plain
        layout on a device that has the blocked one (a different kernel of onnxruntime)."""
        if self.layout == "nchw" and self.kind in CONV_KINDS:
            return f"{self.base_group}/nchw"
        return self.base_group

    @property
    def macs(self) -> int:
        if self.kind in ("pool", "softmax"):
            return 0
        per_output = (self.in_channels // self.groups) * self.kernel * self.kernel
        return self.out_size * self.out_size * self.out_channels * per_output

    @property
    def in_bytes(self) -> int:
        return self.in_channels * self.in_size * self.in_size * FLOAT_BYTES

    @property
    def out_bytes(self) -> int:
        return self.out_channels * self.out_size * self.out_size * FLOAT_BYTES

    @property
    def weight_bytes(self) -> int:
        if self.kind in ("pool", "softmax"):
            return 0
        weights = self.out_channels * (self.in_channels // self.groups) * self.kernel**2
        return (weights + self.out_channels) * FLOAT_BYTES

    def blocked_macs(self, block: int) -> int:
        """MACs with channels rounded up to whole layout blocks (the stem's 3 input
        channels and the FC are not blocked)."""
        if self.kind in ("pool", "softmax"):
            return 0
        if self.kind == "fc" or block <= 1 or self.layout == "nchw":
            return self.macs
        out = _round_up(self.out_channels, block)
        if self.groups > 1:  # depthwise: one filter per channel
            return self.out_size**2 * out * self.kernel**2
        cin = self.in_channels if self.kind == "stem" else _round_up(self.in_channels, block)
        return self.out_size**2 * out * cin * self.kernel**2

    def features(self, block: int, group: str | None = None) -> dict[str, float]:
        """This kernel's entries of the design matrix (column name -> value); ``group``
        overrides its kind (a plain-layout kernel priced as its blocked kind)."""
        group = group or self.group
        names = KIND_FEATURES[group]
        values = {
            "n": 1.0,
            "kchannels": self.out_channels / 1e3,
            "mmacs": self.blocked_macs(block) / 1e6,
            "mbytes": (self.in_bytes + self.out_bytes + self.weight_bytes) / 1e6,
        }
        if self.kind == "pool":
            values["mbytes"] = self.in_bytes / 1e6
        return {f"{group}:{name}": values[name] for name in names}


def _round_up(value: int, block: int) -> int:
    return -(-value // block) * block


def layer_kernel(layer: Layer) -> Kernel:
    """The kernel of one conv layer of the architecture table."""
    return Kernel(
        kind=layer.role,
        block=layer.block,
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        in_size=layer.in_size,
        out_size=layer.out_size,
        kernel=layer.kernel,
        stride=layer.stride,
        groups=layer.groups,
        name=layer.name,
    )


def head_kernels(channels: int, size: int, classes: int = CLASSES, block: int = 14) -> list[Kernel]:
    """GlobalAveragePool over ``channels × size × size``, the FC to ``classes``, softmax."""
    return [
        Kernel("pool", block, channels, channels, size, 1, name="pool"),
        Kernel("fc", block, channels, classes, 1, 1, name="fc"),
        Kernel("softmax", block, classes, classes, 1, 1, name="softmax"),
    ]


def with_layouts(
    kernels: Sequence[Kernel], layouts: Layouts | None, input_bytes: int
) -> tuple[list[Kernel], int, int]:
    """The kernels with their detected layouts, and the reorders' count and bytes."""
    if layouts is None:
        return list(kernels), 0, 0
    by_name = {k.name: k for k in kernels}
    placed = [
        replace(k, layout=layouts.convs.get(k.name, "nchw")) if k.kind in CONV_KINDS else k
        for k in kernels
    ]
    moved = 0
    for name in layouts.reorders:
        found = by_name.get(name)
        moved += found.out_bytes if found is not None else input_bytes
    return placed, len(layouts.reorders), moved


def probe_kernels(
    role: str, layers: Sequence[Layer], in_channels: int, in_size: int
) -> list[Kernel]:
    """The kernels of a layer probe (``mobilenet.probes.Probe``: its role, layers and input)."""
    if role == "head":
        fc = layers[0]
        return head_kernels(in_channels, in_size, fc.out_channels)
    return [layer_kernel(layer) for layer in layers]


def model_kernels(
    alpha: float, resolution: int, variant: str = "separable", kernel: int = 3
) -> list[Kernel]:
    """Every kernel of one generated model, in execution order."""
    layers = scaled_layers(alpha, resolution, variant, kernel)
    kernels: list[Kernel] = []
    for layer in layers:
        if layer.role == "fc":
            last = kernels[-1]
            kernels += head_kernels(last.out_channels, last.out_size, layer.out_channels)
        else:
            kernels.append(layer_kernel(layer))
    return kernels


@dataclass(frozen=True)
class Row:
    """One measured graph as a row of the fit: its kernels, boundaries and median time."""

    kernels: tuple[Kernel, ...]
    latency_ms: float
    source: str
    """What was measured: a probe's or a model's name."""
    whole_model: bool = False
    boundaries: int = 0
    boundary_bytes: int = 0
    sha256: str = ""

    def features(self, block: int) -> dict[str, float]:
        values: dict[str, float] = {"overhead:n": 1.0}
        for item in self.kernels:
            for name, value in item.features(block).items():
                values[name] = values.get(name, 0.0) + value
        if self.boundaries:
            values["boundary:n"] = float(self.boundaries)
            values["boundary:mbytes"] = self.boundary_bytes / 1e6
        return values


@functools.lru_cache(maxsize=512)
def variant_kernels(
    alpha: float, resolution: int, variant: str, kernel: int, detect: bool
) -> tuple[tuple[Kernel, ...], int, int]:
    """A generated model's kernels (layouts detected on this machine when ``detect``), and
    the count and bytes of the layout reorders inside it."""
    kernels = model_kernels(alpha, resolution, variant, kernel)
    layouts = None
    if detect:
        from mobilenet.generator import build_model
        from mobilenet.spec import ModelSpec

        spec = ModelSpec(alpha, resolution, variant, kernel)  # type: ignore[arg-type]
        layouts = detect_layouts(build_model(spec))
    placed, count, moved = with_layouts(kernels, layouts, kernels[0].in_bytes)
    return tuple(placed), count, moved


@functools.lru_cache(maxsize=4096)
def probe_graph_kernels(
    alpha: float, resolution: int, kernel: int, block: int, role: str, detect: bool
) -> tuple[str, tuple[Kernel, ...], int, int]:
    """A layer probe's name, kernels (layouts detected when ``detect``) and reorders."""
    from mobilenet.probes import build_probe, family_probe

    probe = family_probe(alpha, resolution, kernel, block, role)
    kernels = probe_kernels(probe.role, probe.layers, probe.in_channels, probe.in_size)
    layouts = detect_layouts(build_probe(probe)) if detect else None
    first = kernels[0]
    placed, count, moved = with_layouts(kernels, layouts, first.in_bytes)
    return probe.name, tuple(placed), count, moved


def roofline_ms(item: Kernel, peak_gflop_s: float, bandwidth_gb_s: float) -> float:
    """max(FLOPs / peak, bytes / bandwidth): the roofline's bound on one kernel's time."""
    moved = item.in_bytes + item.out_bytes + item.weight_bytes
    compute_s = 2.0 * item.macs / (peak_gflop_s * 1e9)
    memory_s = moved / (bandwidth_gb_s * 1e9)
    return max(compute_s, memory_s) * 1e3
