"""The generator and cost model against oracles derived independently of the code under test.

The independent oracle is the paper's Table 1 (with TF-Slim's strides) written out here as
plain tuples and counted by formula; the issue's published numbers check the oracle itself.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from harness.cli import main
from mobilenet.cost import analyze_model
from mobilenet.errors import UserError
from mobilenet.generator import build_model, check_model, generate, write_models_csv
from mobilenet.spec import ModelSpec

# (kind, stride, output channels at alpha = 1): the paper's Table 1, TF-Slim strides.
TABLE_1 = [("conv", 2, 32)] + [
    ("ds", s, c)
    for s, c in [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)]
    + [(1, 512)] * 5
    + [(2, 1024), (1, 1024)]
]
ALPHAS = (1.0, 0.75, 0.5, 0.25)
RESOLUTIONS = (224, 192, 160, 128)
GRID = [(a, r) for a in ALPHAS for r in RESOLUTIONS]


def oracle(
    alpha: float, resolution: int, variant: str = "separable", kernel: int = 3, classes: int = 1000
) -> tuple[int, int]:
    """(MACs, params) of the BN-folded graph counted by formula from TABLE_1."""
    macs = params = 0
    channels, size = 3, resolution
    for kind, stride, depth in TABLE_1:
        out = max(int(depth * alpha), 8)
        size = math.ceil(size / stride)
        if kind == "conv":
            macs += size * size * 9 * channels * out
            params += 9 * channels * out + out
        elif variant == "standard":
            macs += size * size * kernel * kernel * channels * out
            params += kernel * kernel * channels * out + out
        else:
            macs += size * size * kernel * kernel * channels + size * size * channels * out
            params += kernel * kernel * channels + channels + channels * out + out
        channels = out
    macs += channels * classes
    params += channels * classes + classes
    return macs, params


PUBLISHED = {
    (1.0, 224): (568_740_352, 4_221_032),
    (1.0, 192): (418_121_728, 4_221_032),
    (1.0, 160): (290_675_200, 4_221_032),
    (1.0, 128): (186_400_768, 4_221_032),
    (0.75, 224): (325_400_448, 2_577_352),
    (0.75, 128): (106_770_432, 2_577_352),
    (0.5, 224): (149_497_088, 1_326_120),
    (0.25, 224): (41_030_272, 467_336),
    (0.25, 128): (13_570_048, 467_336),
}


@pytest.mark.parametrize(("alpha", "resolution"), sorted(PUBLISHED))
def test_oracle_reproduces_the_published_numbers(alpha: float, resolution: int) -> None:
    assert oracle(alpha, resolution) == PUBLISHED[(alpha, resolution)]


def test_oracle_reproduces_table_4_and_kernel_5() -> None:
    assert oracle(1.0, 224, "standard") == (4_867_293_184, 29_288_104)
    assert oracle(1.0, 224, kernel=5)[0] == 599_648_768


@pytest.mark.parametrize(("alpha", "resolution"), GRID)
def test_generated_grid_matches_the_oracle(alpha: float, resolution: int) -> None:
    model = build_model(ModelSpec(alpha=alpha, resolution=resolution))
    cost = analyze_model(model)
    assert (cost.total_macs, cost.total_params) == oracle(alpha, resolution)
    props = {p.key: p.value for p in model.metadata_props}
    assert int(props["mnbench.macs"]) == cost.total_macs
    assert int(props["mnbench.params"]) == cost.total_params
    initializer_elements = sum(math.prod(t.dims) for t in model.graph.initializer)
    assert initializer_elements == cost.total_params


@pytest.mark.parametrize(
    ("variant", "kernel"), [("standard", 3), ("separable", 5), ("separable", 7), ("standard", 5)]
)
def test_variants_and_kernels_match_the_oracle(variant: str, kernel: int) -> None:
    spec = ModelSpec(alpha=0.5, resolution=160, variant=variant, kernel=kernel)  # type: ignore[arg-type]
    cost = analyze_model(build_model(spec))
    assert (cost.total_macs, cost.total_params) == oracle(0.5, 160, variant, kernel)


def test_table_2_mac_shares() -> None:
    cost = analyze_model(build_model(ModelSpec()))
    shares = {k: round(100 * v / cost.total_macs, 2) for k, v in cost.macs_by_kind().items()}
    assert shares["pointwise"] == 94.86
    assert shares["depthwise"] == 3.06
    assert shares["fc"] == 0.18
    assert shares["stem"] == 1.91  # the paper prints 1.19 %, a transposition


def test_separable_blocks_predicted_ratio() -> None:
    cost = analyze_model(build_model(ModelSpec(alpha=0.75, resolution=192, kernel=5)))
    assert len(cost.blocks) == 13
    for block in cost.blocks:
        assert block.kernel == 5
        assert block.predicted_ratio == pytest.approx(1 / block.out_channels + 1 / 25)
        dw = block.out_size**2 * 25 * block.in_channels
        pw = block.out_size**2 * block.in_channels * block.out_channels
        std = block.out_size**2 * 25 * block.in_channels * block.out_channels
        assert (block.depthwise_macs, block.pointwise_macs, block.standard_macs) == (dw, pw, std)


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(alpha=0.25, resolution=128),
        ModelSpec(alpha=0.25, resolution=96, variant="standard"),
        ModelSpec(alpha=0.35, resolution=131, kernel=5, activation="relu", fold_bn=False),
    ],
    ids=lambda s: s.name,
)
def test_models_check_and_run(spec: ModelSpec) -> None:
    model = build_model(spec)
    check_model(model)
    assert model.opset_import[0].version == 13 and model.ir_version == 7
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, spec.resolution, spec.resolution))
    (probs,) = session.run(None, {"input": x.astype(np.float32)})
    assert probs.shape == (1, 1000)
    assert probs.sum() == pytest.approx(1.0, rel=1e-4)
    assert np.isfinite(probs).all() and probs.max() < 0.999  # activations stayed in range


def test_node_names_carry_the_layer() -> None:
    names = {n.name for n in build_model(ModelSpec(alpha=0.25, resolution=128)).graph.node}
    assert {"conv0", "block1.depthwise", "block3.pointwise", "block13.pointwise", "fc"} <= names
    std = {
        n.name
        for n in build_model(ModelSpec(alpha=0.25, resolution=128, variant="standard")).graph.node
    }
    assert "block3.conv" in std and "block3.depthwise" not in std
    bn = {
        n.op_type
        for n in build_model(ModelSpec(alpha=0.25, resolution=128, fold_bn=False)).graph.node
    }
    assert "BatchNormalization" in bn


def test_byte_identical_and_distinct(tmp_path: Path) -> None:
    a = generate(ModelSpec(alpha=0.25, resolution=128), tmp_path / "a")
    b = generate(ModelSpec(alpha=0.25, resolution=128), tmp_path / "b")
    c = generate(ModelSpec(alpha=0.25, resolution=160), tmp_path / "a")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == hashlib.sha256(b.path.read_bytes()).hexdigest()
    assert a.sha256 != c.sha256


def test_spec_names_and_rho() -> None:
    assert ModelSpec(alpha=0.75, resolution=160).name == "mobilenet_v1_0.75_160"
    assert ModelSpec(variant="standard", kernel=5).name == "mobilenet_v1_1.0_224_standard_k5"
    assert ModelSpec(alpha=0.5, resolution=128).rho == pytest.approx(128 / 224)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"alpha": 0.0}, "alpha 0.0"),
        ({"alpha": 2.5}, "alpha 2.5"),
        ({"alpha": float("nan")}, "alpha nan"),
        ({"resolution": 31}, "resolution 31"),
        ({"resolution": 100.5}, "resolution 100.5"),
        ({"kernel": 4}, "kernel 4"),
        ({"kernel": 13}, "kernel 13"),
        ({"variant": "dense"}, "variant 'dense'"),
    ],
)
def test_bad_specs_are_one_line_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError) as info:
        ModelSpec(**kwargs)  # type: ignore[arg-type]
    assert fragment in info.value.message and "\n" not in info.value.message


def test_generate_command_writes_models_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    rc = main(["generate", "--alpha", "0.25", "0.5", "--resolution", "128", "--out", str(out)])
    assert rc == 0
    lines = (out / "models.csv").read_text().splitlines()
    assert lines[0] == (
        "name,alpha,resolution,variant,kernel,precision,macs,params,weight_bytes,file,sha256"
    )
    rows = [line.split(",") for line in lines[1:]]
    assert sorted(r[0] for r in rows) == ["mobilenet_v1_0.25_128", "mobilenet_v1_0.5_128"]
    for row in rows:
        path = out / row[9]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row[10]
        assert (int(row[6]), int(row[7])) == oracle(float(row[1]), int(row[2]))
    rc = main(["generate", "--alpha", "0.25", "--rho", "0.5", "--out", str(out)])
    assert rc == 0
    assert "mobilenet_v1_0.25_112" in (out / "models.csv").read_text()
    assert "mobilenet_v1_0.5_128" in (out / "models.csv").read_text()  # merged, not lost
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--alpha", "0"],
        ["generate", "--alpha", "x"],
        ["generate", "--resolution", "20"],
        ["generate", "--resolution", "128.5"],
        ["generate", "--kernel", "2"],
        ["generate", "--variant", "dense"],
    ],
)
def test_generate_bad_input_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnbench: error:") and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_generate_unwritable_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert (
        main(
            ["generate", "--alpha", "0.25", "--resolution", "128", "--out", str(blocker / "models")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "cannot write" in err or "--out" in err
    assert len(err.splitlines()) == 1


def test_no_partial_files_left(tmp_path: Path) -> None:
    generate(ModelSpec(alpha=0.25, resolution=128), tmp_path)
    write_models_csv(tmp_path, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mobilenet_v1_0.25_128.onnx",
        "models.csv",
    ]
