"""Kernel-level latency model: predict a MobileNetV1 variant's time on a device from probes.

Owns the model, all pure (no measuring, no store access):

- **kernels**: the units onnxruntime's CPU provider executes for our family after fusion
  (conv + bias + Clip fuse into one NCHWc conv; the head is GlobalAveragePool, Gemm and
  Softmax): ``stem``, ``depthwise`` (with its ReLU6), ``pointwise``, ``standard`` (the
  baseline's full conv), ``pool``, ``fc``, ``softmax``. ``model_kernels`` lists them for any
  α, resolution, D_K and variant from the architecture table (no graph is built).
- **features**: per kernel, from its shapes: a count (per-kernel dispatch), MACs counted on
  channels rounded up to the layout's block (``block`` 1, 8 or 16: onnxruntime's NCHWc
  layout computes whole blocks of 8 or 16 channels on AVX2/AVX-512 machines), and the bytes
  it moves (input + output + weights). Depthwise and standard convs of stride 2 are their
  own kinds. Each row (one measured graph) adds its kernels' features, one per-inference
  overhead, and for a probe the layout boundaries it has and a whole model does not (the
  reorders into and out of NCHWc of the probe's input and output: count and bytes).
- **the fit**: time = features · coefficients, coefficients ≥ 0 (non-negative least
  squares, scipy's ``nnls``), each row weighted by 1 / its measured time so the fit
  minimises relative error (the target is ±10 %) and a whole model's row by
  ``WHOLE_MODEL_WEIGHT`` more, then refitted once with rows whose
  relative residual is beyond 3 × the median absolute one down-weighted (a noisy fresh
  process should not steer the fit). The block size is chosen by 5-fold cross-validation
  among 1, 8 and 16. The interval of a prediction is the 5th–95th percentile of the
  cross-validated relative errors (of whole models when at least 3 were measured, else of
  every row). **In context**: a kernel inside a whole network runs slower than the same
  kernel timed alone in a probe (its weights and input no longer hot in the caches:
  depthwise convs about 1.25×, the FC about 1.5× on a 2-core Xeon, pointwise convs the
  same), by a factor of each kernel kind's own (``factors``: the median over the training
  whole models' profiled layers of that kind of in-network / fitted-alone time), so a
  prediction is the sum of each kernel times its kind's factor, times ``context``, the median
  over the training whole models of measured / fitted time with the factors applied (fitted
  on the training models only, never on held-out ones; their fastest samples, robust to a
  busy machine). A linear model rather than
  nn-Meter's random forests: a few hundred samples
  (a few minutes of measuring) instead of thousands, every coefficient reads as a
  throughput (ms per MMAC, per MB) or an overhead (ms per kernel), and it extrapolates to
  α up to 2 where a forest's leaves cannot.
- **sampling**: training configurations are drawn from the family itself (random α —
  half of them multiples of 1/8, whose channel counts the blocked layout takes whole —,
  resolution, D_K and block, then the block's kernel in one role, stratified by role and
  stride; ``separable`` probes time a block's depthwise and pointwise convs in one graph,
  two kernels between the same two layout reorders as a single-kernel probe has, so the
  reorders' cost is told apart from the kernels'), as nn-Meter samples from the prior
  distribution of real models' configurations;
  ``neighbours`` gives the fine-grained samples around configurations whose
  cross-validated error is above the threshold (nn-Meter's adaptive sampling).
- **the cost ratio**: per block, the predicted separable / standard time from the fitted
  kernels, and a roofline version (Williams et al. 2009) from the device's GEMM and copy
  ceilings, beside 1/N + 1/D_K² (Howard et al. 2017, eq. 5).
"""

from __future__ import annotations

import functools
import json
import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from mobilenet.architecture import CLASSES, Layer, scaled_layers
from mobilenet.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

MODEL_SCHEMA: Final = "mnbench.latency-model/1"
FLOAT_BYTES: Final = 4
BLOCK_CHOICES: Final[tuple[int, ...]] = (1, 8, 16)
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
FEATURE_SETS: Final[dict[str, tuple[str, ...]]] = {
    "full": CONV_FEATURES,
    "macs": ("n", "mmacs"),
}
"""The convs' feature columns a fit may use, chosen by cross-validation with the block: all
of them, or a count and MACs only. With few rows (an emulated board's fit has about 50 for
the plain layout's 30 columns) the full set overfits; emulated code's time is close to linear
in MACs."""
OUTLIER_MADS: Final = 3.0
CV_FOLDS: Final = 5
INTERVAL_QUANTILES: Final = (0.05, 0.95)
WHOLE_MODEL_WEIGHT = 1.0
"""A whole model's row counts this many times a probe's in the kernel fit. What a whole
model carries that the probes cannot (the kernels in their context in one graph: evicted
caches, the head's weights read cold) is its own factor, ``FittedModel.context``, so the
whole models need not pull the kernels' coefficients away from the probes."""
CONTEXT_MIN_MODELS: Final = 3
"""Whole models needed to fit the in-context factor (fewer: 1.0)."""
CONTEXT_MIN_LAYERS: Final = 3
"""Profiled layers of one kind needed for that kind's own in-context factor (fewer: 1.0)."""
ERROR_THRESHOLD: Final = 0.10
"""Relative error above which a training configuration gets fine-grained neighbours."""

SAMPLE_ALPHAS: Final = (0.2, 1.5)
SAMPLE_RESOLUTIONS: Final = (88, 288)
SAMPLE_KERNELS: Final = (3, 3, 5, 7)
SAMPLE_ROLES: Final = (
    ("depthwise", 0.26),
    ("pointwise", 0.26),
    ("separable", 0.16),
    ("standard", 0.18),
    ("stem", 0.07),
    ("head", 0.07),
)


# ----------------------------------------------------------------------------- kernels


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


# ----------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Layouts:
    """What onnxruntime's graph optimizer made of one graph: the layout of each conv
    (layer name -> ``nchwc`` | ``nchw``) and the tensors it reorders between layouts (the
    layer whose output is reordered, or ``input`` for the graph's input)."""

    convs: Mapping[str, str]
    reorders: tuple[str, ...]


def detect_layouts(model: Any) -> Layouts:
    """Optimise ``model`` (an ``onnx.ModelProto``) as the CPU provider would at level
    ``all`` on this machine and read which kernels it chose: our kernel detection, from the
    optimised graph rather than nn-Meter's timed test cases (the transformer's decision is
    visible, so it need not be inferred from timings)."""
    import os
    import tempfile

    import onnx
    import onnxruntime as ort

    from mobilenet.layers import assign_layer

    names = {node.name: node.name for node in model.graph.node if node.op_type == "Conv"}
    names |= {"input": "input", "pool": "pool"}
    with tempfile.TemporaryDirectory(prefix="mnbench-detect-") as tmp:
        source = os.path.join(tmp, "model.onnx")
        target = os.path.join(tmp, "optimized.onnx")
        onnx.save(model, source)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1
        options.optimized_model_filepath = target
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(target)
    convs: dict[str, str] = {}
    reorders: list[str] = []
    for node in optimized.graph.node:
        if node.op_type in ("ReorderInput", "ReorderOutput"):
            tensor = node.input[0] if node.op_type == "ReorderInput" else node.output[0]
            layer = assign_layer(tensor, names)
            reorders.append(layer or "input")
            continue
        layer = assign_layer(node.name, names)
        if layer is None or layer in ("input", "pool"):
            continue
        if node.op_type in ("Conv", "FusedConv"):
            convs[layer] = "nchwc" if node.domain.endswith("nchwc") else "nchw"
    return Layouts(convs, tuple(reorders))


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


# ----------------------------------------------------------------------------- rows


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


def design(rows: Sequence[Row], block: int, features: str = "full") -> np.ndarray:
    """The rows' design matrix over ``COLUMNS``; a conv feature outside the ``FEATURE_SETS``
    entry ``features`` is left at 0, so the fit gives it no coefficient."""
    index = {name: i for i, name in enumerate(COLUMNS)}
    kept = FEATURE_SETS[features]
    matrix = np.zeros((len(rows), len(COLUMNS)))
    for r, row in enumerate(rows):
        for name, value in row.features(block).items():
            group, _, feature = name.rpartition(":")
            if KIND_FEATURES.get(group) == CONV_FEATURES and feature not in kept:
                continue
            matrix[r, index[name]] = value
    return matrix


# ----------------------------------------------------------------------------- the fit


def _nnls(matrix: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted NNLS with columns scaled to unit norm (columns without data stay 0)."""
    from scipy.optimize import nnls

    weighted = matrix * weights[:, None]
    scale = np.linalg.norm(weighted, axis=0)
    used = scale > 0
    coef = np.zeros(matrix.shape[1])
    if not used.any():
        return coef
    solution, _ = nnls(
        weighted[:, used] / scale[used], target * weights, maxiter=50 * matrix.shape[1]
    )
    coef[used] = solution / scale[used]
    return coef


def robust_fit(
    matrix: np.ndarray, latency_ms: np.ndarray, row_weights: np.ndarray | None = None
) -> np.ndarray:
    """NNLS on relative error (rows further weighted by ``row_weights``), then once more
    with outlying rows down-weighted."""
    weights = (1.0 if row_weights is None else row_weights) / latency_ms
    coef = _nnls(matrix, latency_ms, weights)
    relative = (matrix @ coef - latency_ms) / latency_ms
    spread = float(np.median(np.abs(relative))) or 1e-9
    limit = OUTLIER_MADS * spread
    soft = np.where(np.abs(relative) > limit, limit / np.maximum(np.abs(relative), 1e-12), 1.0)
    return _nnls(matrix, latency_ms, weights * soft)


def _folds(count: int, folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    return [order[i::folds] for i in range(min(folds, count))]


def row_weights(rows: Sequence[Row]) -> np.ndarray:
    """``WHOLE_MODEL_WEIGHT`` for whole models, 1 for probes."""
    return np.array([WHOLE_MODEL_WEIGHT if row.whole_model else 1.0 for row in rows])


def cross_validated(
    rows: Sequence[Row], block: int, seed: int = 0, features: str = "full"
) -> np.ndarray:
    """Relative error of each row predicted by a fit without its fold."""
    matrix = design(rows, block, features)
    target = np.array([row.latency_ms for row in rows])
    weights = row_weights(rows)
    errors = np.full(len(rows), np.nan)
    for fold in _folds(len(rows), CV_FOLDS, seed):
        train = np.ones(len(rows), dtype=bool)
        train[fold] = False
        if train.sum() == 0:
            continue
        coef = robust_fit(matrix[train], target[train], weights[train])
        errors[fold] = (matrix[fold] @ coef - target[fold]) / target[fold]
    return errors


@dataclass(frozen=True)
class Scope:
    """What a fitted model is valid for: one device × runtime × threads × precision."""

    device: str
    runtime: str
    threads: int
    precision: str = "fp32"

    @property
    def key(self) -> str:
        return f"{self.device}|{self.runtime}|{self.threads}|{self.precision}"


@dataclass(frozen=True)
class FittedModel:
    """Coefficients (ms per unit of each column of ``COLUMNS``) and how well they fit."""

    scope: Scope
    block: int
    coefficients: Mapping[str, float]
    interval: tuple[float, float]
    """Relative error quantiles (5th, 95th): a prediction p has interval p/(1+hi)..p/(1+lo)."""
    cv_within_10: float
    """Share of training rows whose cross-validated prediction is within ±10 %."""
    rows: int
    whole_models: int
    run_ids: tuple[int, ...] = ()
    block_errors: Mapping[str, float] = field(default_factory=dict)
    """Median absolute cross-validated error for each block choice (``"8"``), and for each
    block with the other feature sets (``"8:macs"``)."""
    peak_gflop_s: float | None = None
    bandwidth_gb_s: float | None = None
    detected: bool = False
    """Kernel layouts were detected with this machine's onnxruntime (a device of the same
    architecture); else every kernel is priced as one plain kind."""
    scale: float = 1.0
    """Median / minimum time of the training cells: kernels are fitted to the fastest
    sample of each cell (robust to a busy machine), predictions are of medians."""
    trained: tuple[str, ...] = ()
    """Kernel kinds with training data; an untrained plain-layout kind is priced as its
    blocked kind."""
    context: float = 1.0
    """Whole models' measured / fitted time (median over the training whole models, with
    ``factors`` applied): the kernels in one network against the same kernels timed alone."""
    factors: Mapping[str, float] = field(default_factory=dict)
    """Per kernel kind (``Kernel.kind``): the median over the training whole models' layers
    of that kind of their profiled time in the network / their fitted time alone. Kinds
    differ: a memory-bound depthwise conv loses its hot caches in a network, a compute-bound
    standard conv hardly notices. A kind without one runs at 1.0 (then ``context`` alone)."""
    features: str = "full"
    """The convs' feature set the fit chose (``FEATURE_SETS``)."""

    def to_json(self) -> str:
        data = asdict(self)
        data["schema"] = MODEL_SCHEMA
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FittedModel:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema") != MODEL_SCHEMA:
            raise UserError(
                "the stored latency model has an unknown format; refit it with "
                "`mnbench predict --refit`"
            )
        scope = data["scope"]
        features = str(data.get("features") or "full")
        if features not in FEATURE_SETS:
            raise UserError(
                f"the stored latency model uses feature set {features[:40]!r}, unknown here; "
                "refit it with `mnbench predict --refit`"
            )
        return cls(
            scope=Scope(
                str(scope["device"]),
                str(scope["runtime"]),
                int(scope["threads"]),
                str(scope["precision"]),
            ),
            block=int(data["block"]),
            coefficients={str(k): float(v) for k, v in data["coefficients"].items()},
            interval=(float(data["interval"][0]), float(data["interval"][1])),
            cv_within_10=float(data["cv_within_10"]),
            rows=int(data["rows"]),
            whole_models=int(data["whole_models"]),
            run_ids=tuple(int(r) for r in data.get("run_ids") or ()),
            block_errors={str(k): float(v) for k, v in (data.get("block_errors") or {}).items()},
            peak_gflop_s=_optional(data.get("peak_gflop_s")),
            bandwidth_gb_s=_optional(data.get("bandwidth_gb_s")),
            detected=bool(data.get("detected")),
            scale=float(data.get("scale") or 1.0),
            trained=tuple(str(g) for g in data.get("trained") or ()),
            context=float(data.get("context") or 1.0),
            factors={str(k): float(v) for k, v in (data.get("factors") or {}).items()},
            features=features,
        )

    def kernel_ms(self, item: Kernel) -> float:
        """The kernel's fitted time (before ``scale``)."""
        group = item.group
        if self.trained and group not in self.trained and item.base_group in self.trained:
            group = item.base_group
        return sum(
            self.coefficients.get(name, 0.0) * value
            for name, value in item.features(self.block, group).items()
        )

    def in_context_ms(self, item: Kernel) -> float:
        """The kernel's fitted time with its kind's in-context factor (before ``context``
        and ``scale``)."""
        return self.kernel_ms(item) * self.factors.get(item.kind, 1.0)

    def network_ms(self, kernels: Iterable[Kernel], count: int, moved_bytes: int) -> float:
        """A whole network's fitted time: its kernels in context, the per-inference overhead
        and its layout reorders (before ``context`` and ``scale``)."""
        return (
            sum(self.in_context_ms(item) for item in kernels)
            + self.coefficients.get("overhead:n", 0.0)
            + self.boundary_ms(count, moved_bytes)
        )

    def boundary_ms(self, count: int, moved_bytes: int) -> float:
        return (
            self.coefficients.get("boundary:n", 0.0) * count
            + self.coefficients.get("boundary:mbytes", 0.0) * moved_bytes / 1e6
        )

    def row_ms(self, row: Row) -> float:
        return sum(
            self.coefficients.get(name, 0.0) * value
            for name, value in row.features(self.block).items()
        )


def _optional(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def select_design(
    rows: Sequence[Row], blocks: Sequence[int] = BLOCK_CHOICES, seed: int = 0
) -> tuple[int, str, np.ndarray, dict[str, float]]:
    """The layout block and feature set with the lowest median absolute cross-validated
    error: (block, feature set, each row's cross-validated error, every choice's score keyed
    ``"8"`` for the full set and ``"8:macs"`` for the others)."""
    scores: dict[str, float] = {}
    best: tuple[float, int, str, np.ndarray] | None = None
    for features in FEATURE_SETS:
        for block in blocks:
            errors = cross_validated(rows, block, seed, features)
            score = float(np.nanmedian(np.abs(errors)))
            scores[str(block) if features == "full" else f"{block}:{features}"] = score
            if best is None or score < best[0]:
                best = (score, block, features, errors)
    assert best is not None
    _, block, features, errors = best
    return block, features, errors, scores


def fit(
    rows: Sequence[Row],
    scope: Scope,
    *,
    run_ids: Sequence[int] = (),
    blocks: Sequence[int] = BLOCK_CHOICES,
    peak_gflop_s: float | None = None,
    bandwidth_gb_s: float | None = None,
    seed: int = 0,
    detected: bool = False,
    scale: float = 1.0,
    profiled: Sequence[tuple[Kernel, float]] = (),
) -> FittedModel:
    """Fit the kernel model to measured rows (deterministic for the same rows and seed);
    ``profiled``: the training whole models' layers as (kernel, its profiled ms in the
    network), for the per-kind in-context factors."""
    usable = [row for row in rows if math.isfinite(row.latency_ms) and row.latency_ms > 0]
    if len(usable) < len(COLUMNS) // 2:
        raise UserError(
            f"{len(usable)} usable measurements are too few to fit a latency model; measure "
            "more with `mnbench predict --refit`"
        )
    block, chosen, errors, block_errors = select_design(usable, blocks, seed)
    matrix = design(usable, block, chosen)
    target = np.array([row.latency_ms for row in usable])
    coef = robust_fit(matrix, target, row_weights(usable))
    whole = np.array([row.whole_model for row in usable])
    coefficients = {name: float(value) for name, value in zip(COLUMNS, coef, strict=True)}
    alone = FittedModel(scope, block, coefficients, (0.0, 0.0), math.nan, 0, 0)
    factors = kind_factors(alone, profiled)
    placed = replace(alone, factors=factors)
    fitted_whole = np.array(
        [
            placed.network_ms(row.kernels, row.boundaries, row.boundary_bytes)
            for row in usable
            if row.whole_model
        ]
    )
    context = in_context_factor(fitted_whole, target[whole])
    pool = errors[whole] if whole.sum() >= 3 else errors
    pool = pool[np.isfinite(pool)]
    low, high = (float(np.quantile(pool, q)) for q in INTERVAL_QUANTILES)
    finite = errors[np.isfinite(errors)]
    return FittedModel(
        scope=scope,
        block=block,
        coefficients=coefficients,
        interval=(min(low, 0.0), max(high, 0.0)),
        cv_within_10=float(np.mean(np.abs(finite) <= 0.10)) if finite.size else math.nan,
        rows=len(usable),
        whole_models=int(whole.sum()),
        run_ids=tuple(sorted(set(int(r) for r in run_ids))),
        block_errors=block_errors,
        peak_gflop_s=peak_gflop_s,
        bandwidth_gb_s=bandwidth_gb_s,
        detected=detected,
        scale=scale,
        trained=tuple(sorted({k.group for row in usable for k in row.kernels})),
        context=context,
        factors=factors,
        features=chosen,
    )


def kind_factors(model: FittedModel, profiled: Sequence[tuple[Kernel, float]]) -> dict[str, float]:
    """Per kernel kind, the median of profiled-in-the-network / fitted-alone time over the
    profiled layers of that kind (kinds with fewer than ``CONTEXT_MIN_LAYERS``: none). The
    median, so a layer profiled while the machine was busy does not move it."""
    ratios: dict[str, list[float]] = {}
    for item, measured_ms in profiled:
        fitted_ms = model.kernel_ms(item)
        if fitted_ms > 0 and math.isfinite(measured_ms) and measured_ms > 0:
            ratios.setdefault(item.kind, []).append(measured_ms / fitted_ms)
    return {
        kind: float(statistics.median(values))
        for kind, values in sorted(ratios.items())
        if len(values) >= CONTEXT_MIN_LAYERS
    }


def in_context_factor(fitted_ms: np.ndarray, measured_ms: np.ndarray) -> float:
    """Median of measured / fitted time over whole models (1.0 with fewer than
    ``CONTEXT_MIN_MODELS``): the median, so one model measured on a busy machine does not
    move it."""
    ok = (fitted_ms > 0) & np.isfinite(measured_ms)
    if ok.sum() < CONTEXT_MIN_MODELS:
        return 1.0
    return float(np.median(measured_ms[ok] / fitted_ms[ok]))


# ----------------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class Prediction:
    """A whole model's predicted time with its interval, and the time of each block."""

    alpha: float
    resolution: int
    variant: str
    kernel: int
    latency_ms: float
    low_ms: float
    high_ms: float
    macs: int
    blocks_ms: tuple[tuple[int, float], ...]
    """(block, ms): 0 the stem, 1-13 the blocks, 14 the head; the overhead is in none."""

    @property
    def name(self) -> str:
        from mobilenet.spec import ModelSpec

        return ModelSpec(self.alpha, self.resolution, self.variant, self.kernel).name  # type: ignore[arg-type]


def predict(
    model: FittedModel,
    alpha: float,
    resolution: int,
    variant: str = "separable",
    kernel: int = 3,
) -> Prediction:
    """The predicted time of one variant (validated like a ModelSpec)."""
    from mobilenet.spec import ModelSpec

    ModelSpec(alpha, resolution, variant, kernel)  # type: ignore[arg-type]
    kernels, count, moved = variant_kernels(
        float(alpha), int(resolution), variant, int(kernel), model.detected
    )
    factor = model.scale * model.context
    blocks: dict[int, float] = {}
    for item in kernels:
        blocks[item.block] = blocks.get(item.block, 0.0) + model.in_context_ms(item) * factor
    total = model.network_ms(kernels, count, moved) * factor
    low_rel, high_rel = model.interval
    return Prediction(
        alpha=float(alpha),
        resolution=int(resolution),
        variant=variant,
        kernel=int(kernel),
        latency_ms=total,
        low_ms=total / (1.0 + high_rel) if high_rel > -1 else 0.0,
        high_ms=total / (1.0 + low_rel) if low_rel > -1 else math.inf,
        macs=sum(item.macs for item in kernels),
        blocks_ms=tuple(sorted(blocks.items())),
    )


def relative_error(predicted_ms: float, measured_ms: float) -> float:
    return (predicted_ms - measured_ms) / measured_ms


def within_shares(errors: Iterable[float]) -> tuple[float, float]:
    """Share of relative errors within ±5 % and ±10 %."""
    values = np.array([e for e in errors if math.isfinite(e)])
    if values.size == 0:
        return math.nan, math.nan
    return float(np.mean(np.abs(values) <= 0.05)), float(np.mean(np.abs(values) <= 0.10))


@dataclass(frozen=True)
class Truth:
    """A measured variant: the median over its trials' medians and a 95 % interval of it."""

    name: str
    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    trials: int
    trial_medians: tuple[float, ...] = ()

    @property
    def fastest_ms(self) -> float:
        """The fastest trial's median: the variant in a fresh process while the host was at
        its quickest (on a shared host whole minutes run 1.3-2.5x slower)."""
        return min(self.trial_medians) if self.trial_medians else math.nan

    @property
    def ci_rel(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms


def trial_ci(medians: Sequence[float]) -> tuple[float, float, float]:
    """Median of per-trial medians and a distribution-free 95 % CI of it (binomial order
    statistics; the widest, the extremes, below 6 trials)."""
    from scipy.stats import binom

    values = sorted(medians)
    n = len(values)
    centre = statistics.median(values)
    if n < 6:
        return centre, values[0], values[-1]
    k = int(binom.ppf(0.025, n, 0.5))
    low_index = max(0, k - 1)
    high_index = min(n - 1, n - k)
    return centre, values[low_index], values[high_index]


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class ProbeConfig:
    """A probe to measure: one block's kernel(s) of the family at one α × resolution × D_K."""

    alpha: float
    resolution: int
    kernel: int
    block: int
    role: str


def sample_configs(count: int, seed: int = 0) -> list[ProbeConfig]:
    """``count`` probes drawn from the family, stratified so that a small count still
    covers every kind: roles in the proportions of ``SAMPLE_ROLES`` (largest remainder),
    blocks of the depthwise and standard roles alternating between stride 1 and stride 2,
    α log-uniform, resolution uniform (multiples of 8), D_K from 3, 5, 7 (3 twice as
    often); stem probes are block 0, head probes block 14."""
    from mobilenet.architecture import CONV_DEFS

    rng = random.Random(seed)
    stride_two = [i for i in range(1, 14) if CONV_DEFS[i].stride == 2]
    stride_one = [i for i in range(1, 14) if CONV_DEFS[i].stride == 1]
    quota = {role: int(count * weight) for role, weight in SAMPLE_ROLES}
    by_remainder = sorted(SAMPLE_ROLES, key=lambda rw: -(count * rw[1] - int(count * rw[1])))
    for role, _ in by_remainder[: count - sum(quota.values())]:
        quota[role] += 1
    configs: list[ProbeConfig] = []
    seen: set[ProbeConfig] = set()
    for role, _ in SAMPLE_ROLES:
        made = 0
        while made < quota[role]:
            if role == "stem":
                block = 0
            elif role == "head":
                block = 14
            elif role in ("depthwise", "separable", "standard"):
                block = rng.choice(stride_two if made % 2 else stride_one)
            else:
                block = rng.randint(1, 13)
            config = ProbeConfig(
                alpha=_sample_alpha(rng),
                resolution=rng.randrange(SAMPLE_RESOLUTIONS[0], SAMPLE_RESOLUTIONS[1] + 1, 8),
                kernel=(
                    rng.choice(SAMPLE_KERNELS)
                    if role in ("depthwise", "separable", "standard")
                    else 3
                ),
                block=block,
                role=role,
            )
            if config not in seen:
                seen.add(config)
                configs.append(config)
                made += 1
    rng.shuffle(configs)
    return configs


def _sample_alpha(rng: random.Random) -> float:
    """Half the draws a multiple of 1/8 (channel counts the blocked layout takes whole, as
    at the usual α of 0.25, 0.5, 0.75, 1.0), half log-uniform (any channel count)."""
    low, high = SAMPLE_ALPHAS
    if rng.random() < 0.5:
        return rng.randrange(math.ceil(low * 8), math.floor(high * 8) + 1) / 8
    return round(math.exp(rng.uniform(math.log(low), math.log(high))), 3)


def neighbours(config: ProbeConfig, count: int, seed: int = 0) -> list[ProbeConfig]:
    """Fine-grained samples around a configuration: same block, role and D_K, α within
    ±15 % and resolution within ±24 px."""
    rng = random.Random(f"{seed}:{config}")
    found: list[ProbeConfig] = []
    for _ in range(count * 4):
        if len(found) >= count:
            break
        alpha = round(min(2.0, max(0.1, config.alpha * rng.uniform(0.85, 1.15))), 3)
        resolution = max(32, config.resolution + rng.randrange(-24, 25, 8))
        candidate = ProbeConfig(alpha, resolution, config.kernel, config.block, config.role)
        if candidate != config and candidate not in found:
            found.append(candidate)
    return found


# ----------------------------------------------------------------------------- the ratio


RATIO_COLUMNS: Final[tuple[str, ...]] = (
    "device",
    "threads",
    "alpha",
    "resolution",
    "D_K",
    "block",
    "M",
    "N",
    "D_F",
    "stride",
    "paper_ratio",
    "mac_ratio",
    "predicted_ratio",
    "roofline_ratio",
    "separable_ms",
    "standard_ms",
)


def roofline_ms(item: Kernel, peak_gflop_s: float, bandwidth_gb_s: float) -> float:
    """max(FLOPs / peak, bytes / bandwidth): the roofline's bound on one kernel's time."""
    moved = item.in_bytes + item.out_bytes + item.weight_bytes
    compute_s = 2.0 * item.macs / (peak_gflop_s * 1e9)
    memory_s = moved / (bandwidth_gb_s * 1e9)
    return max(compute_s, memory_s) * 1e3


def block_ratios(
    model: FittedModel, alpha: float, resolution: int, kernels: Sequence[int] = (3,)
) -> pd.DataFrame:
    """Per block: separable / standard time predicted by the fitted kernels, and by the
    roofline of the device's measured ceilings (NaN without them), beside 1/N + 1/D_K² and
    the exact MAC ratio. One row per D_K × block, columns ``RATIO_COLUMNS``."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    peak, bandwidth = model.peak_gflop_s, model.bandwidth_gb_s
    for dk in kernels:
        separable = model_kernels(alpha, resolution, "separable", dk)
        standard = model_kernels(alpha, resolution, "standard", dk)
        for block in range(1, 14):
            sep = [k for k in separable if k.block == block]
            std = [k for k in standard if k.block == block]
            sep_ms = sum(model.kernel_ms(k) for k in sep)
            std_ms = sum(model.kernel_ms(k) for k in std)
            roof = math.nan
            if peak and bandwidth:
                roof = sum(roofline_ms(k, peak, bandwidth) for k in sep) / sum(
                    roofline_ms(k, peak, bandwidth) for k in std
                )
            dw = sep[0]
            records.append(
                {
                    "device": model.scope.device,
                    "threads": model.scope.threads,
                    "alpha": float(alpha),
                    "resolution": int(resolution),
                    "D_K": int(dk),
                    "block": block,
                    "M": dw.in_channels,
                    "N": std[0].out_channels,
                    "D_F": dw.in_size,
                    "stride": dw.stride,
                    "paper_ratio": 1.0 / std[0].out_channels + 1.0 / dk**2,
                    "mac_ratio": sum(k.macs for k in sep) / std[0].macs,
                    "predicted_ratio": sep_ms / std_ms if std_ms > 0 else math.nan,
                    "roofline_ratio": roof,
                    "separable_ms": sep_ms,
                    "standard_ms": std_ms,
                }
            )
    frame: pd.DataFrame = pd.DataFrame(records, columns=list(RATIO_COLUMNS))
    return frame


# ----------------------------------------------------------------------------- from the store


WHOLE_VARIANTS: Final = ("separable", "standard")


def rows_from_frames(
    probes: pd.DataFrame, results: pd.DataFrame, detect: bool, statistic: str = "min_ms"
) -> list[Row]:
    """Training rows from ``Store.probes_frame`` (layer probes of any role) and
    ``Store.results_frame`` (whole generated fp32 models), timed by ``statistic``; cells
    without it are left out. Kernels are rebuilt from the stored facts (and their layouts
    detected when ``detect``)."""
    rows: list[Row] = []
    for record in probes.to_dict("records"):
        value = _optional(record.get(statistic))
        if value is None or value <= 0:
            continue
        name, kernels, count, moved = probe_graph_kernels(
            float(record["alpha"]),
            int(record["resolution"]),
            int(record["kernel"]),
            int(record["block"]),
            str(record["role"]),
            detect,
        )
        rows.append(Row(kernels, value, name, False, count, moved, str(record["sha256"])))
    for record in results.to_dict("records"):
        value = _optional(record.get(statistic))
        variant = record.get("variant")
        if value is None or value <= 0 or variant not in WHOLE_VARIANTS:
            continue
        if record.get("precision") not in (None, "fp32"):
            continue
        kernels, count, moved = variant_kernels(
            float(record["alpha"]),
            int(record["resolution"]),
            str(variant),
            int(record["kernel"]),
            detect,
        )
        rows.append(
            Row(kernels, value, str(record["name"]), True, count, moved, str(record["sha256"]))
        )
    return rows


def profiled_layers(
    profiles: pd.DataFrame, results: pd.DataFrame, detect: bool
) -> list[tuple[Kernel, float]]:
    """The training whole models' layers with their in-network times, from
    ``Store.profiles_frame`` (per-layer sums of the runner's per-node profiles, median over
    trials) and ``Store.results_frame`` (which generated model each sha256 is): (kernel, ms),
    for every conv layer and the FC; layers no kernel is named after are left out."""
    specs: dict[str, tuple[float, int, str, int]] = {}
    for record in results.to_dict("records"):
        if record.get("variant") in WHOLE_VARIANTS and record.get("precision") in (None, "fp32"):
            specs[str(record["sha256"])] = (
                float(record["alpha"]),
                int(record["resolution"]),
                str(record["variant"]),
                int(record["kernel"]),
            )
    found: list[tuple[Kernel, float]] = []
    for record in profiles.to_dict("records"):
        spec = specs.get(str(record["sha256"]))
        value = _optional(record.get("time_ms"))
        if spec is None or value is None or value <= 0:
            continue
        kernels, _, _ = variant_kernels(*spec, detect)
        named = {item.name: item for item in kernels if item.kind in (*CONV_KINDS, "fc")}
        item = named.get(str(record["layer"]))
        if item is not None:
            found.append((item, value))
    return found


def median_over_min(measurements: pd.DataFrame) -> float:
    """The median over measurements (one fresh process each, ``Store.measurements_frame``)
    of median / minimum time: how far a typical sample sits above the fastest one in its
    process (the fit prices the fastest; predictions are of medians). Per process, so a
    cell measured once in a slow spell and once in a fast one does not count the spell."""
    ratios = [
        float(p50) / float(low)
        for p50, low in zip(measurements["p50_ms"], measurements["min_ms"], strict=True)
        if _optional(p50) and _optional(low) and float(low) > 0
    ]
    return float(statistics.median(ratios)) if ratios else 1.0
