"""Layer probes: one separable block of MobileNetV1 as small ONNX graphs, to time on its own.

For each of the 13 depthwise-separable blocks of a given α × resolution (from
``mobilenet.architecture.scaled_layers``: input D_F × D_F × M, output N, stride s) and a kernel
D_K, four single-layer graphs:

- ``standard``: the full convolution D_K × D_K × M → N, stride s, that the block replaces;
- ``separable``: its factorisation, a depthwise D_K × D_K conv then a pointwise 1 × 1 conv;
- ``depthwise``: the depthwise conv alone (same input as the two above);
- ``pointwise``: the pointwise conv alone (its input is the depthwise output).

Every conv is followed by its activation (ReLU6 as Clip), with TF "SAME" pads, batch norm
folded, seeded He-normal weights: the nodes come from the generator's ``GraphBuilder``, so a
probe's layer is built exactly as in the whole model. The parts are timed as their own probes
(not from the separable probe's per-node profile), so each part gets the runner's stopping
rule and confidence interval like any other model.

For the latency model (``harness.predict``) two more roles: ``stem`` (the network's
first
conv, block 0) and ``head`` (global average pool, FC and softmax, block 14); any α,
resolution and D_K of the family gives a probe (``family_probe``), not only the 13 blocks
of one model.

Cost (Howard et al. 2017, eq. 5 and Table 2): standard D_K²·M·N·D_F'², depthwise D_K²·M·D_F'²,
pointwise M·N·D_F'² MACs (D_F' the output size), so separable / standard = 1/N + 1/D_K².
Opset 13 and IR version 7, like the whole models.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import onnx
from onnx import helper

from mobilenet.architecture import CONV_DEFS, DepthSepConv, Layer, scaled_layers
from mobilenet.errors import UserError
from mobilenet.generator import (
    INPUT_NAME,
    GraphBuilder,
    check_model,
    write_atomic,
)
from mobilenet.layers import PROBE_VARIANT_PREFIX

ProbeRole = Literal["standard", "separable", "depthwise", "pointwise", "stem", "head"]
PROBE_ROLES: tuple[ProbeRole, ...] = get_args(ProbeRole)
BLOCK_ROLES: tuple[ProbeRole, ...] = ("standard", "separable", "depthwise", "pointwise")
"""The roles of ``mnbench layers``; ``stem`` and ``head`` probes are the latency model's."""
STEM_BLOCK = 0
HEAD_BLOCK = len(CONV_DEFS)
BLOCKS: tuple[int, ...] = tuple(
    index for index, record in enumerate(CONV_DEFS) if isinstance(record, DepthSepConv)
)
PROBE_KERNELS: tuple[int, ...] = (3, 5, 7)
ACTIVATION = "relu6"
_NAME = re.compile(
    r"^probe_block(?P<block>\d+)_(?P<role>[a-z]+)_k(?P<kernel>\d+)"
    r"_a(?P<alpha>[0-9.]+)_r(?P<resolution>\d+)$"
)


@dataclass(frozen=True)
class Probe:
    """One probe graph: a block's layer(s) in one role."""

    block: int
    role: ProbeRole
    kernel: int
    alpha: float
    resolution: int
    in_channels: int  # M
    out_channels: int  # N
    in_size: int  # D_F of the block's input
    out_size: int  # D_F' = ceil(D_F / stride)
    stride: int
    layers: tuple[Layer, ...]

    @property
    def name(self) -> str:
        return (
            f"probe_block{self.block}_{self.role}_k{self.kernel}_a{self.alpha!r}_r{self.resolution}"
        )

    @property
    def variant(self) -> str:
        return PROBE_VARIANT_PREFIX + self.role

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        if self.role == "head":  # global pool over the last block's output
            return (1, self.in_channels, self.in_size, self.in_size)
        first = self.layers[0]
        return (1, first.in_channels, first.in_size, first.in_size)

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.role == "head":
            return (1, self.out_channels)
        last = self.layers[-1]
        return (1, last.out_channels, last.out_size, last.out_size)

    @property
    def predicted_ratio(self) -> float:
        """1/N + 1/D_K² (Howard et al. 2017, eq. 5)."""
        return 1.0 / self.out_channels + 1.0 / self.kernel**2

    def facts(self) -> dict[str, Any]:
        """The probe as JSON-ready facts (stored with the model's cost card)."""
        return {
            "block": self.block,
            "role": self.role,
            "kernel": self.kernel,
            "alpha": self.alpha,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "in_size": self.in_size,
            "out_size": self.out_size,
            "stride": self.stride,
            "macs": self.macs,
        }


def parse_probe_name(name: str) -> dict[str, Any] | None:
    """``probe_block7_standard_k3_a1.0_r224`` -> its fields, or None for any other name."""
    match = _NAME.match(name)
    if match is None or match["role"] not in PROBE_ROLES:
        return None
    return {
        "block": int(match["block"]),
        "role": match["role"],
        "kernel": int(match["kernel"]),
        "alpha": float(match["alpha"]),
        "resolution": int(match["resolution"]),
    }


def block_probes(
    alpha: float,
    resolution: int,
    kernels: tuple[int, ...] = (3,),
    blocks: tuple[int, ...] = BLOCKS,
    roles: tuple[ProbeRole, ...] = BLOCK_ROLES,
) -> list[Probe]:
    """The probes of the given blocks, kernels and roles, block-major."""
    unknown = sorted(set(blocks) - set(BLOCKS))
    if unknown:
        raise UserError(
            f"block {unknown[0]} does not exist: MobileNetV1 has separable blocks "
            f"{BLOCKS[0]} to {BLOCKS[-1]}"
        )
    probes: list[Probe] = []
    for kernel in kernels:
        from mobilenet.spec import ModelSpec

        ModelSpec(alpha=alpha, resolution=resolution, kernel=kernel)  # validates the values
        separable = scaled_layers(alpha, resolution, "separable", kernel)
        standard = scaled_layers(alpha, resolution, "standard", kernel)
        for block in blocks:
            dw = next(x for x in separable if x.block == block and x.role == "depthwise")
            pw = next(x for x in separable if x.block == block and x.role == "pointwise")
            std = next(x for x in standard if x.block == block and x.role == "standard")
            by_role: dict[ProbeRole, tuple[Layer, ...]] = {
                "standard": (std,),
                "separable": (dw, pw),
                "depthwise": (dw,),
                "pointwise": (pw,),
            }
            for role in roles:
                probes.append(
                    Probe(
                        block=block,
                        role=role,
                        kernel=kernel,
                        alpha=float(alpha),
                        resolution=resolution,
                        in_channels=dw.in_channels,
                        out_channels=pw.out_channels,
                        in_size=dw.in_size,
                        out_size=dw.out_size,
                        stride=dw.stride,
                        layers=by_role[role],
                    )
                )
    return probes


def family_probe(alpha: float, resolution: int, kernel: int, block: int, role: str) -> Probe:
    """One probe of any role, including the network's ``stem`` conv (block 0) and ``head``
    (global average pool, FC, softmax; block 14): the latency model's training units."""
    if role not in PROBE_ROLES:
        raise UserError(f"probe role {role!r} does not exist: choose {', '.join(PROBE_ROLES)}")
    if role in BLOCK_ROLES:
        return block_probes(alpha, resolution, (kernel,), (block,), (role,))[0]
    from mobilenet.spec import ModelSpec

    ModelSpec(alpha=alpha, resolution=resolution, kernel=kernel)  # validates the values
    layers = scaled_layers(alpha, resolution, "separable", kernel)
    if role == "stem":
        stem = layers[0]
        return Probe(
            block=STEM_BLOCK,
            role="stem",
            kernel=kernel,
            alpha=float(alpha),
            resolution=resolution,
            in_channels=stem.in_channels,
            out_channels=stem.out_channels,
            in_size=stem.in_size,
            out_size=stem.out_size,
            stride=stem.stride,
            layers=(stem,),
        )
    fc, last = layers[-1], layers[-2]
    return Probe(
        block=HEAD_BLOCK,
        role="head",
        kernel=kernel,
        alpha=float(alpha),
        resolution=resolution,
        in_channels=fc.in_channels,
        out_channels=fc.out_channels,
        in_size=last.out_size,
        out_size=1,
        stride=1,
        layers=(fc,),
    )


def probe_seed(probe: Probe) -> int:
    return int.from_bytes(hashlib.sha256(probe.name.encode()).digest()[:8], "little")


def build_probe(probe: Probe) -> onnx.ModelProto:
    """The probe's ONNX graph, with its facts and cost in ``metadata_props``."""
    builder = GraphBuilder(np.random.default_rng(probe_seed(probe)))
    x = INPUT_NAME
    for layer in probe.layers:
        if layer.role == "fc":
            x = builder.head(x, layer)
            continue
        x = builder.conv(x, layer, fold_bn=True)
        x = builder.activation(x, layer.name, ACTIVATION)
    model = builder.to_model(
        probe.name,
        probe.input_shape,
        x,
        probe.output_shape,
        f"MobileNetV1 layer probe {probe.name} (Howard et al. 2017, eq. 5)",
    )
    from mobilenet.cost import analyze_model

    cost = analyze_model(model)
    helper.set_model_props(
        model,
        {
            "mnbench.probe": json.dumps(probe.facts(), sort_keys=True),
            "mnbench.name": probe.name,
            "mnbench.macs": str(cost.total_macs),
            "mnbench.params": str(cost.total_params),
        },
    )
    return model


@dataclass(frozen=True)
class GeneratedProbe:
    probe: Probe
    path: Path
    sha256: str
    macs: int
    params: int
    weight_bytes: int
    peak_activation_bytes: int
    file_bytes: int
    card: dict[str, Any]
    """The cost card stored with the model (``ModelRecord.cost``): probe facts and layers."""


def generate_probe(probe: Probe, out_dir: Path, check: bool = True) -> GeneratedProbe:
    """Build, check and write ``out_dir/<name>.onnx``; reuse an identical existing file."""
    from mobilenet.cost import analyze_model
    from mobilenet.layers import layer_card

    model = build_probe(probe)
    if check:
        check_model(model)
    data = model.SerializeToString()
    path = out_dir / f"{probe.name}.onnx"
    digest = hashlib.sha256(data).hexdigest()
    try:
        if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
            write_atomic(path, data)
    except OSError as exc:
        raise UserError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable --models-dir"
        ) from exc
    cost = analyze_model(model)
    card = layer_card(cost, model)
    for layer in probe.layers:  # the cost model calls any conv on the graph input a stem
        card["layers"][layer.name]["kind"] = layer.role
    card["probe"] = probe.facts()
    return GeneratedProbe(
        probe=probe,
        path=path,
        sha256=digest,
        macs=cost.total_macs,
        params=cost.total_params,
        weight_bytes=cost.total_weight_bytes,
        peak_activation_bytes=cost.peak_activation_bytes,
        file_bytes=len(data),
        card=card,
    )
