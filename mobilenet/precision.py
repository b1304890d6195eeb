"""Precision variants of a generated model — int8 (static QDQ) and fp16 — and their fidelity.

A variant is always derived from its fp32 parent, so the two compute the same function up to
rounding and the fidelity numbers say how much the rounding costs.

- **int8**: ONNX Runtime's post-training static quantisation (``quantize_static``), QDQ format
  (QuantizeLinear/DequantizeLinear pairs around float ops, which the runtime fuses into integer
  kernels), weights int8 per output channel, activations uint8 asymmetric (ReLU6 outputs lie in
  [0, 6], so an unsigned range uses all 256 levels, as the TF-Lite quantised MobileNets do),
  MinMax calibration, no range reduction — the runtime's guidance for CPUs, see
  https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html.
- **fp16**: every float initializer and Constant in float16, inputs and outputs kept float32
  with a Cast after each input and before each output (``keep_io_types``), so the same runner
  and inputs work. Values are rounded to nearest (numpy ``astype``); nothing is clamped.
- **Calibration and held-out inputs** are image-like: smooth random fields (a sum of
  bilinearly upsampled Gaussian noise octaves, each octave half the amplitude of the coarser
  one) with a random mean colour and contrast, as pixels in [0, 1], then normalised like the
  model's input. Or the user's JPEG/PNG files: converted to RGB, the shorter side resized to
  the model's resolution (bilinear), centre-cropped to a square, scaled to [0, 1] and
  normalised. The normalisation is ImageNet's per-channel mean (0.485, 0.456, 0.406) and
  standard deviation (0.229, 0.224, 0.225), NCHW float32 — the convention of torchvision's
  ImageNet models.
- **Fidelity** of a variant to its parent, on held-out synthetic images drawn from a different
  random stream than the calibration images: top-1 agreement (fraction of inputs whose argmax
  matches), top-5 overlap (mean |top5 ∩ top5'| / 5) and the mean cosine similarity of the
  output vectors. Both models run single-threaded so the numbers do not depend on the
  machine's core count.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mobilenet.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_CALIBRATION_IMAGES = 32
MAX_CALIBRATION_IMAGES = 256
MAX_CALIBRATION_PIXELS = 50_000_000
"""Pixels of one calibration image decoded at most (a 7000 x 7000 photo)."""
MAX_ASPECT_RATIO = 16
"""Longer side over shorter side at most: the shorter side is resized to the resolution."""
"""A folder with more images is calibrated on the first 256 by file name."""
DEFAULT_FIDELITY_INPUTS = 64
DEFAULT_SEED = 0

Purpose = Literal["calibration", "fidelity"]
PURPOSES: tuple[Purpose, ...] = ("calibration", "fidelity")
CalibrationKind = Literal["synthetic", "images"]


# ----------------------------------------------------------------------------- images


def normalise(pixels: np.ndarray) -> np.ndarray:
    """CHW pixels in [0, 1] as the model's input: ImageNet mean and std per channel."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return ((pixels.astype(np.float32) - mean) / std).astype(np.float32)


def _bilinear(grid: np.ndarray, size: int) -> np.ndarray:
    """Upsample (C, h, w) to (C, size, size), corners aligned."""
    _, h, w = grid.shape
    ys = np.linspace(0.0, h - 1.0, size)
    xs = np.linspace(0.0, w - 1.0, size)
    y0 = np.minimum(np.floor(ys).astype(int), h - 2)
    x0 = np.minimum(np.floor(xs).astype(int), w - 2)
    wy = (ys - y0)[None, :, None]
    wx = (xs - x0)[None, None, :]
    top = grid[:, y0][:, :, x0] * (1 - wx) + grid[:, y0][:, :, x0 + 1] * wx
    bottom = grid[:, y0 + 1][:, :, x0] * (1 - wx) + grid[:, y0 + 1][:, :, x0 + 1] * wx
    result: np.ndarray = top * (1 - wy) + bottom * wy
    return result


def synthetic_images(count: int, resolution: int, seed: int, purpose: Purpose) -> np.ndarray:
    """``count`` image-like NCHW float32 inputs; calibration and fidelity never share a stream."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, PURPOSES.index(purpose)]))
    images = np.empty((count, 3, resolution, resolution), dtype=np.float32)
    for index in range(count):
        field = np.zeros((3, resolution, resolution))
        for level, cells in enumerate((2, 4, 8, 16, 32)):
            coarse = rng.standard_normal((3, cells + 1, cells + 1))
            field += 0.5**level * _bilinear(coarse, resolution)
        colour = rng.uniform(0.25, 0.75, size=(3, 1, 1))
        contrast = rng.uniform(0.08, 0.25)
        pixels = np.clip(colour + contrast * field / field.std(), 0.0, 1.0)
        images[index] = normalise(pixels)
    return images


def _open_image(path: Path) -> Any:
    """The image as RGB, its size checked against the pixel budget before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                _check_pixels(path, *image.size)
                image.load()
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"calibration image {path} is too large to decode (over "
            f"{MAX_CALIBRATION_PIXELS:,} pixels); shrink it or remove it"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot read calibration image {path} ({reason[:120]}); "
            "remove it or replace it with a JPEG or PNG file"
        ) from exc


def _check_pixels(path: Path, width: int, height: int) -> None:
    """Refuse an image over the pixel budget, or one so narrow that resizing its shorter side
    to the resolution would blow it up past the budget."""
    if width < 1 or height < 1 or width * height > MAX_CALIBRATION_PIXELS:
        raise UserError(
            f"calibration image {path} is {width}x{height} pixels, over the budget of "
            f"{MAX_CALIBRATION_PIXELS:,}; shrink it or remove it"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise UserError(
            f"calibration image {path} is {width}x{height} pixels, more than "
            f"{MAX_ASPECT_RATIO}:1; crop it or remove it"
        )


def load_image(path: Path, resolution: int) -> np.ndarray:
    """One JPEG/PNG file as a (3, R, R) model input: shorter side to R, centre crop, normalised."""
    from PIL import Image

    image = _open_image(path)
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = (size[0] - resolution) // 2
    top = (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return normalise(pixels)


@dataclass(frozen=True)
class CalibrationSource:
    """What an int8 model is calibrated on: seeded synthetic images or a folder of images."""

    kind: CalibrationKind = "synthetic"
    count: int = DEFAULT_CALIBRATION_IMAGES
    seed: int = DEFAULT_SEED
    files: tuple[Path, ...] = ()

    @classmethod
    def from_directory(cls, directory: Path) -> CalibrationSource:
        """The folder's JPEG/PNG files (first 256 by name), each checked to decode."""
        if not directory.is_dir():
            raise UserError(
                f"calibration folder {directory} does not exist; "
                "give a folder of JPEG or PNG images"
            )
        files = sorted(
            p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )[:MAX_CALIBRATION_IMAGES]
        if not files:
            raise UserError(
                f"calibration folder {directory} has no JPEG or PNG images; add some, "
                "or leave out --calibration to calibrate on synthetic images"
            )
        for path in files:
            _open_image(path)
        return cls(kind="images", count=len(files), files=tuple(files))

    def inputs(self, resolution: int) -> np.ndarray:
        """The calibration set as NCHW float32 model inputs."""
        if self.kind == "synthetic":
            return synthetic_images(self.count, resolution, self.seed, "calibration")
        return np.stack([load_image(path, resolution) for path in self.files])

    def describe(self) -> str:
        """A stable description for the model's metadata (contents, not paths)."""
        if self.kind == "synthetic":
            return f"synthetic: {self.count} images, seed {self.seed}"
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.name.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return f"images: {self.count} files, sha256 {digest.hexdigest()}"


class CalibrationReader:
    """The calibration set, one image per batch, as ONNX Runtime's calibrator reads it."""

    def __init__(self, input_name: str, inputs: np.ndarray) -> None:
        self.input_name = input_name
        self.inputs = inputs
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.inputs):
            return None
        batch = self.inputs[self.position : self.position + 1]
        self.position += 1
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = 0


def _image_input(model: onnx.ModelProto) -> tuple[str, int]:
    """The model's one NCHW float input: its name and (square) resolution."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim] if len(inputs) == 1 else []
    if len(dims) != 4 or dims[1] != 3 or dims[2] != dims[3] or dims[2] <= 0:
        raise UserError(
            "precision variants need a model with one 1x3xRxR image input; "
            "give a model made by mnbench generate"
        )
    return inputs[0].name, dims[2]


# ----------------------------------------------------------------------------- int8


class _DropPreprocessAdvice(logging.Filter):
    """The quantizer advises shape inference and graph optimisation before quantising; our
    graphs are already shape-inferred and BN-folded, so the advice has nothing to add."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    root = logging.getLogger()
    advice = _DropPreprocessAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantize_int8(
    fp32_model_path: Path,
    out_path: Path,
    calibration: CalibrationSource,
    per_channel: bool = True,
) -> None:
    """Statically quantise to int8 QDQ; ``out_path`` appears complete or not at all.

    Softmax stays float: the quantizer gives its output the fixed range [0, 1] in steps of
    1/256, and a 1000-way distribution whose probabilities are near 1/1000 then quantises to
    all zeros. Its cost is negligible next to the convolutions.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    parent = onnx.load(str(fp32_model_path), load_external_data=False)
    input_name, resolution = _image_input(parent)
    float_nodes = [n.name for n in parent.graph.node if n.op_type == "Softmax"]
    reader = CalibrationReader(input_name, calibration.inputs(resolution))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnbench-int8-", dir=out_path.parent) as tmp:
        partial = Path(tmp) / "model.onnx"
        # The quantizer writes "<input>-inferred.onnx" beside its input and leaves it there
        # when it fails (a full disk): give it a link inside the temporary directory.
        source = Path(tmp) / "fp32.onnx"
        try:
            source.symlink_to(Path(fp32_model_path).resolve())
        except OSError:
            shutil.copyfile(fp32_model_path, source)
        with _quiet_quantizer(), _space_errors(Path(tmp), Path(fp32_model_path).stat().st_size):
            quantize_static(
                str(source),
                str(partial),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=False,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_providers=["CPUExecutionProvider"],
                nodes_to_exclude=float_nodes,
            )
        quantized = onnx.load(str(partial), load_external_data=False)
        drop_unused_constants(quantized)
        onnx.save(quantized, str(partial))
        os.replace(partial, out_path)


@contextlib.contextmanager
def _space_errors(directory: Path, needed_bytes: int) -> Iterator[None]:
    """Turn the quantizer's failure on a full disk into ``ENOSPC``.

    ONNX's shape inference ignores a failed write and the quantizer then fails to parse the
    truncated file (a protobuf DecodeError); with less free space left than the model needs,
    that failure is reported for what it is.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        try:
            stats = os.statvfs(directory)
            free = stats.f_bavail * stats.f_frsize
        except OSError:
            raise exc from None
        if free < needed_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory)) from exc
        raise


def drop_unused_constants(model: onnx.ModelProto) -> None:
    """Remove Constant nodes nothing reads (the quantizer folds Clip into the ranges and
    leaves the ReLU6 bounds behind; the runtime would warn about them at every load)."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {v.name for v in graph.output}
    keep = [n for n in graph.node if n.op_type != "Constant" or any(o in used for o in n.output)]
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


# ----------------------------------------------------------------------------- fp16


def _to_fp16(tensor: onnx.TensorProto) -> onnx.TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name)


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Float16 weights and activations; float32 inputs and outputs through Cast nodes."""
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    for index, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[index].CopyFrom(_to_fp16(init))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_to_fp16(attr.t))
    for value in graph.value_info:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16

    initializers = {t.name for t in graph.initializer}
    renames: dict[str, str] = {}
    casts_in: list[onnx.NodeProto] = []
    for value in graph.input:
        if value.name in initializers or value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = f"{value.name}.fp16"
        renames[value.name] = inner
        casts_in.append(
            helper.make_node(
                "Cast", [value.name], [inner], name=f"{value.name}.to_fp16", to=TensorProto.FLOAT16
            )
        )
    casts_out: list[onnx.NodeProto] = []
    for value in graph.output:
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = f"{value.name}.fp16"
        renames[value.name] = inner
        casts_out.append(
            helper.make_node(
                "Cast", [inner], [value.name], name=f"{value.name}.to_fp32", to=TensorProto.FLOAT
            )
        )
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = renames.get(name, name)
    nodes = [*casts_in, *graph.node, *casts_out]
    del graph.node[:]
    graph.node.extend(nodes)
    return converted


# ----------------------------------------------------------------------------- fidelity


@dataclass(frozen=True)
class Fidelity:
    """How closely a precision variant reproduces its fp32 parent's outputs."""

    parent: str
    n_inputs: int
    seed: int
    top1_agreement: float  # fraction of inputs, 0..1
    top5_overlap: float  # mean |top5 ∩ top5'| / 5, 0..1
    cosine: float  # mean cosine similarity of the output vectors

    def to_json(self) -> str:
        return json.dumps(
            {
                "parent": self.parent,
                "n_inputs": self.n_inputs,
                "seed": self.seed,
                "top1_agreement": self.top1_agreement,
                "top5_overlap": self.top5_overlap,
                "cosine": self.cosine,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Fidelity:
        data = json.loads(text)
        return cls(
            parent=str(data["parent"]),
            n_inputs=int(data["n_inputs"]),
            seed=int(data["seed"]),
            top1_agreement=float(data["top1_agreement"]),
            top5_overlap=float(data["top5_overlap"]),
            cosine=float(data["cosine"]),
        )


def _outputs(model: Path | bytes, input_name: str, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    rows = [
        np.asarray(session.run(None, {input_name: inputs[i : i + 1]})[0], dtype=np.float64)
        for i in range(len(inputs))
    ]
    return np.concatenate([r.reshape(1, -1) for r in rows])


def _cosine(a: np.ndarray, b: np.ndarray, centred: bool = True) -> float:
    if centred:
        a, b = a - a.mean(), b - b.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else float(np.array_equal(a, b))


def compare_outputs(parent: np.ndarray, child: np.ndarray) -> tuple[float, float, float]:
    """(top-1 agreement, top-5 overlap, mean cosine) of two (N, classes) output arrays."""
    top1 = float(np.mean(parent.argmax(axis=1) == child.argmax(axis=1)))
    k = min(5, parent.shape[1])
    p5 = np.argsort(-parent, axis=1, kind="stable")[:, :k]
    c5 = np.argsort(-child, axis=1, kind="stable")[:, :k]
    top5 = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(p5, c5, strict=True)]))
    cosine = float(np.mean([_cosine(a, b) for a, b in zip(parent, child, strict=True)]))
    return top1, top5, cosine


def fidelity(
    parent_fp32_path: Path,
    child: Path | bytes,
    n_inputs: int = DEFAULT_FIDELITY_INPUTS,
    seed: int = DEFAULT_SEED,
) -> Fidelity:
    """Run parent and child on the same held-out images and compare their outputs."""
    parent_model = onnx.load(str(parent_fp32_path), load_external_data=False)
    input_name, resolution = _image_input(parent_model)
    inputs = synthetic_images(n_inputs, resolution, seed, "fidelity")
    top1, top5, cosine = compare_outputs(
        _outputs(parent_fp32_path, input_name, inputs), _outputs(child, input_name, inputs)
    )
    return Fidelity(
        parent=parent_model.graph.name or parent_fp32_path.stem,
        n_inputs=n_inputs,
        seed=seed,
        top1_agreement=round(top1, 6),
        top5_overlap=round(top5, 6),
        cosine=round(cosine, 6),
    )


def fidelity_of_model(model: onnx.ModelProto) -> Fidelity | None:
    """The ``mnbench.fidelity`` metadata of a model, if it carries one."""
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get("mnbench.fidelity")
    if text is None:
        return None
    try:
        return Fidelity.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None
