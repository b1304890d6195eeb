"""The ONNX generator: walks the architecture table and builds a MobileNetV1 graph.

Built with ``onnx.helper`` and ``numpy_helper`` under a small builder (a value in, a value
out, node names prefixed by layer: ``conv0``, ``block3.depthwise``, ``block3.pointwise``,
``fc``). Weights are seeded He-normal (He et al. 2015) so activations stay in range; batch
norm is folded into the conv weights and bias by default (or kept as BatchNormalization
nodes). Opset 13 and IR version 7 are pinned so every onnxruntime from 1.15 on loads the
models. The same spec gives byte-identical files: the seed comes from the spec's name and
nothing time-dependent is written.

An int8 or fp16 spec is derived from its fp32 parent, written beside it in the same directory
(see ``mobilenet/precision.py``); the child's metadata names the parent, the calibration and the
measured fidelity to the parent.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mobilenet import files
from mobilenet.architecture import Layer, same_pads, scaled_layers
from mobilenet.errors import UserError
from mobilenet.precision import (
    CalibrationSource,
    Fidelity,
    convert_fp16,
    fidelity,
    fidelity_of_model,
    quantize_int8,
)
from mobilenet.spec import ModelSpec

OPSET = 13
IR_VERSION = 7
PRODUCER = "mnbench"
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
BN_EPSILON = 1e-3  # TF-Slim's batch_norm epsilon


def spec_seed(spec: ModelSpec) -> int:
    """A stable seed per spec: the same name always gives the same weights."""
    return int.from_bytes(hashlib.sha256(spec.name.encode()).digest()[:8], "little")


class GraphBuilder:
    """A value in, a value out: each method adds nodes and returns the output's name."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._clip_bounds: tuple[str, str] | None = None

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(self, x: str, layer: Layer, fold_bn: bool) -> str:
        fan_in = (layer.in_channels // layer.groups) * layer.kernel * layer.kernel
        shape = (layer.out_channels, layer.in_channels // layer.groups, layer.kernel, layer.kernel)
        weight = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(
            np.sqrt(2.0 / fan_in)
        )
        gamma, beta, mean, var = self._bn_params(layer.out_channels)
        top, bottom = same_pads(layer.in_size, layer.kernel, layer.stride)
        attrs: dict[str, Any] = {
            "kernel_shape": [layer.kernel, layer.kernel],
            "strides": [layer.stride, layer.stride],
            "pads": [top, top, bottom, bottom],
            "group": layer.groups,
        }
        if fold_bn:
            scale = gamma / np.sqrt(var + BN_EPSILON)
            weight = weight * scale[:, None, None, None]
            bias = beta - mean * scale
            inputs = [
                x,
                self.initializer(f"{layer.name}.weight", weight),
                self.initializer(f"{layer.name}.bias", bias),
            ]
            self.nodes.append(
                helper.make_node("Conv", inputs, [layer.name], name=layer.name, **attrs)
            )
            return layer.name
        inputs = [x, self.initializer(f"{layer.name}.weight", weight)]
        self.nodes.append(helper.make_node("Conv", inputs, [layer.name], name=layer.name, **attrs))
        bn = f"{layer.name}.bn"
        bn_inputs = [layer.name] + [
            self.initializer(f"{bn}.{part}", value)
            for part, value in (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var))
        ]
        self.nodes.append(
            helper.make_node("BatchNormalization", bn_inputs, [bn], name=bn, epsilon=BN_EPSILON)
        )
        return bn

    def _bn_params(self, channels: int) -> tuple[np.ndarray, ...]:
        gamma = 1.0 + 0.1 * self.rng.standard_normal(channels, dtype=np.float32)
        beta = 0.05 * self.rng.standard_normal(channels, dtype=np.float32)
        mean = 0.05 * self.rng.standard_normal(channels, dtype=np.float32)
        var = 1.0 + 0.1 * np.abs(self.rng.standard_normal(channels, dtype=np.float32))
        return gamma, beta, mean, var

    def activation(self, x: str, prefix: str, kind: str) -> str:
        out = f"{prefix}.{kind}"
        if kind == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [out], name=out))
            return out
        if self._clip_bounds is None:
            # Constant nodes, not initializers: the bounds are not parameters.
            self._clip_bounds = ("relu6.min", "relu6.max")
            for name, value in zip(self._clip_bounds, (0.0, 6.0), strict=True):
                tensor = numpy_helper.from_array(np.array(value, dtype=np.float32), name)
                self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=tensor))
        self.nodes.append(helper.make_node("Clip", [x, *self._clip_bounds], [out], name=out))
        return out

    def head(self, x: str, fc: Layer) -> str:
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
        self.nodes.append(
            helper.make_node("Flatten", ["pool"], ["flatten"], name="flatten", axis=1)
        )
        weight = self.rng.standard_normal((fc.out_channels, fc.in_channels), dtype=np.float32)
        weight *= np.float32(np.sqrt(1.0 / fc.in_channels))
        inputs = [
            "flatten",
            self.initializer("fc.weight", weight),
            self.initializer("fc.bias", np.zeros(fc.out_channels, dtype=np.float32)),
        ]
        self.nodes.append(helper.make_node("Gemm", inputs, ["fc"], name="fc", transB=1))
        self.nodes.append(
            helper.make_node("Softmax", ["fc"], [OUTPUT_NAME], name="softmax", axis=1)
        )
        return OUTPUT_NAME

    def to_model(
        self,
        name: str,
        input_shape: Sequence[int],
        output: str,
        output_shape: Sequence[int],
        doc: str,
    ) -> onnx.ModelProto:
        """The graph built so far as a model, at the pinned opset and IR version."""
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(input_shape))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))],
            self.initializers,
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            doc_string=doc,
        )


def build_model(spec: ModelSpec) -> onnx.ModelProto:
    """The ONNX model for a spec, with the spec and cost totals in ``metadata_props``."""
    layers = scaled_layers(spec.alpha, spec.resolution, spec.variant, spec.kernel, spec.classes)
    builder = GraphBuilder(np.random.default_rng(spec_seed(spec)))
    x = INPUT_NAME
    for layer in layers:
        if layer.role == "fc":
            x = builder.head(x, layer)
            continue
        x = builder.conv(x, layer, spec.fold_bn)
        x = builder.activation(x, layer.name, spec.activation)
    model = builder.to_model(
        spec.name,
        [1, 3, spec.resolution, spec.resolution],
        x,
        [1, spec.classes],
        f"MobileNetV1 {spec.name} (Howard et al. 2017, arXiv:1704.04861)",
    )
    from mobilenet.cost import analyze_model

    cost = analyze_model(model)
    metadata = {
        "mnbench.spec": spec.to_json(),
        "mnbench.name": spec.name,
        "mnbench.macs": str(cost.total_macs),
        "mnbench.params": str(cost.total_params),
        "mnbench.weight_bytes": str(cost.total_weight_bytes),
        "mnbench.peak_activation_bytes": str(cost.peak_activation_bytes),
    }
    helper.set_model_props(model, metadata)
    return model


def check_model(model: onnx.ModelProto) -> None:
    """The full checker and strict shape inference; raises onnx's errors on failure."""
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


@dataclass(frozen=True)
class GeneratedModel:
    spec: ModelSpec
    path: Path
    sha256: str
    macs: int
    params: int
    weight_bytes: int
    peak_activation_bytes: int
    file_bytes: int
    fidelity: Fidelity | None = None


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, then rename: no partial files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, data)


def generate(
    spec: ModelSpec,
    out_dir: Path,
    check: bool = True,
    calibration: CalibrationSource | None = None,
) -> GeneratedModel:
    """Build, check and write ``out_dir/<name>.onnx``; reuse an identical existing file.

    For int8 and fp16 the fp32 parent is generated first (in ``out_dir`` too) and the child
    derived from it. Without ``calibration`` an int8 model already there that was derived
    from the same parent is kept, whatever it was calibrated on; otherwise int8 models are
    calibrated on seeded synthetic images.
    """
    if spec.precision != "fp32":
        return _generate_variant(spec, out_dir, check, calibration)
    model = build_model(spec)
    if check:
        check_model(model)
    return _write_model(spec, model, out_dir / f"{spec.name}.onnx")


def _write_model(spec: ModelSpec, model: onnx.ModelProto, path: Path) -> GeneratedModel:
    data = model.SerializeToString()
    digest = hashlib.sha256(data).hexdigest()
    try:
        if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
            write_atomic(path, data)
    except OSError as exc:
        raise UserError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable models "
            "directory (--out of generate, --models-dir of run)"
        ) from exc
    return _generated(spec, model, path, digest, len(data))


def _generated(
    spec: ModelSpec, model: onnx.ModelProto, path: Path, digest: str, file_bytes: int
) -> GeneratedModel:
    props = {p.key: p.value for p in model.metadata_props}
    return GeneratedModel(
        spec=spec,
        path=path,
        sha256=digest,
        macs=int(props["mnbench.macs"]),
        params=int(props["mnbench.params"]),
        weight_bytes=int(props["mnbench.weight_bytes"]),
        peak_activation_bytes=int(props["mnbench.peak_activation_bytes"]),
        file_bytes=file_bytes,
        fidelity=fidelity_of_model(model),
    )


def _kept_variant(spec: ModelSpec, path: Path, parent_sha256: str) -> GeneratedModel | None:
    """An existing variant file derived from this parent, or None."""
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)
        props = {p.key: p.value for p in model.metadata_props}
        if (
            props.get("mnbench.spec") != spec.to_json()
            or props.get("mnbench.parent_sha256") != parent_sha256
        ):
            return None
        return _generated(spec, model, path, hashlib.sha256(data).hexdigest(), len(data))
    except Exception:  # unreadable, truncated or foreign (protobuf's DecodeError): derive again
        return None


def _generate_variant(
    spec: ModelSpec, out_dir: Path, check: bool, calibration: CalibrationSource | None
) -> GeneratedModel:
    parent = generate(replace(spec, precision="fp32"), out_dir, check)
    path = out_dir / f"{spec.name}.onnx"
    if calibration is None or spec.precision != "int8":
        kept = _kept_variant(spec, path, parent.sha256)
        if kept is not None:
            return kept
    source = calibration or CalibrationSource()
    metadata = {"mnbench.parent": parent.spec.name, "mnbench.parent_sha256": parent.sha256}
    if spec.precision == "int8":
        import onnxruntime

        with tempfile.TemporaryDirectory(prefix=".mnbench-", dir=out_dir) as tmp:
            partial = Path(tmp) / f"{spec.name}.onnx"
            quantize_int8(parent.path, partial, source)
            model = onnx.load(str(partial), load_external_data=False)
        metadata["mnbench.calibration"] = source.describe()
        metadata["mnbench.quantizer"] = f"onnxruntime.quantization {onnxruntime.__version__}"
        how = "int8 static QDQ, per-channel weights"
    else:
        model = convert_fp16(onnx.load(str(parent.path), load_external_data=False))
        how = "float16 weights and activations, float32 inputs and outputs"
    measured = fidelity(parent.path, model.SerializeToString())
    from mobilenet.cost import analyze_model

    cost = analyze_model(model)
    del model.metadata_props[:]
    model.graph.name = spec.name
    model.producer_name = PRODUCER
    model.producer_version = ""
    model.doc_string = (
        f"MobileNetV1 {spec.name}: {how}, derived from {parent.spec.name} "
        "(Howard et al. 2017, arXiv:1704.04861)"
    )
    metadata |= {
        "mnbench.spec": spec.to_json(),
        "mnbench.name": spec.name,
        "mnbench.macs": str(cost.total_macs),
        "mnbench.params": str(cost.total_params),
        "mnbench.weight_bytes": str(cost.total_weight_bytes),
        "mnbench.peak_activation_bytes": str(cost.peak_activation_bytes),
        "mnbench.fidelity": measured.to_json(),
    }
    helper.set_model_props(model, dict(sorted(metadata.items())))
    if check:
        check_model(model)
    return _write_model(spec, model, path)


MODELS_CSV_COLUMNS = (
    "name",
    "alpha",
    "resolution",
    "variant",
    "kernel",
    "precision",
    "macs",
    "params",
    "weight_bytes",
    "file",
    "sha256",
)


def write_models_csv(out_dir: Path, models: Sequence[GeneratedModel]) -> Path:
    """``models.csv`` with exactly the documented columns, merged with rows already there."""
    import csv
    import io

    path = out_dir / "models.csv"
    rows: dict[str, dict[str, str]] = {}
    if path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if tuple(row) == MODELS_CSV_COLUMNS and (out_dir / row["file"]).is_file():
                    rows[row["name"]] = row
    for m in models:
        rows[m.spec.name] = {
            "name": m.spec.name,
            "alpha": repr(m.spec.alpha),
            "resolution": str(m.spec.resolution),
            "variant": m.spec.variant,
            "kernel": str(m.spec.kernel),
            "precision": m.spec.precision,
            "macs": str(m.macs),
            "params": str(m.params),
            "weight_bytes": str(m.weight_bytes),
            "file": m.path.name,
            "sha256": m.sha256,
        }
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MODELS_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in sorted(rows):
        writer.writerow(rows[name])
    write_atomic(path, buffer.getvalue().encode())
    return path


FIDELITY_CSV_COLUMNS = ("name", "parent", "n_inputs", "top1_agreement", "top5_overlap", "cosine")


def write_fidelity_csv(out_dir: Path, models: Sequence[GeneratedModel]) -> Path | None:
    """``fidelity.csv`` beside ``models.csv``: one row per precision variant, merged with the
    rows already there whose model file still exists; None when there is nothing to write."""
    import csv
    import io

    path = out_dir / "fidelity.csv"
    rows: dict[str, dict[str, str]] = {}
    if path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if (
                    tuple(row) == FIDELITY_CSV_COLUMNS
                    and (out_dir / f"{row['name']}.onnx").is_file()
                ):
                    rows[row["name"]] = row
    for m in models:
        if m.fidelity is not None:
            rows[m.spec.name] = {
                "name": m.spec.name,
                "parent": m.fidelity.parent,
                "n_inputs": str(m.fidelity.n_inputs),
                "top1_agreement": repr(m.fidelity.top1_agreement),
                "top5_overlap": repr(m.fidelity.top5_overlap),
                "cosine": repr(m.fidelity.cosine),
            }
    if not rows:
        return None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIDELITY_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in sorted(rows):
        writer.writerow(rows[name])
    write_atomic(path, buffer.getvalue().encode())
    return path


def spec_from_model(model: onnx.ModelProto) -> ModelSpec | None:
    """The spec a model was generated from, or None for anyone else's model."""
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get("mnbench.spec")
    if text is None:
        return None
    try:
        return ModelSpec.from_json(text)
    except (ValueError, KeyError, UserError, json.JSONDecodeError):
        return None
