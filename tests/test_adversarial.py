"""A careless or hostile user at every verb: each bad input is one line, exit 2, no work.

Table-driven: every case runs ``harness.cli.main`` in-process in one shared workspace (a
results database with three stored runs, a tiny ONNX model and broken ones, inventories,
calibration folders, a directory of the user's own files) and asserts the documented exit
code, exactly one line on stderr, no traceback, and that no file in the workspace was
created, changed or removed (names, sizes and modification times before and after).
Refusals happen before any measurement, so the whole table runs in seconds.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from harness.cli import main
from mobilenet.validate import MAX_PLAN_ITEMS
from results.store import Store
from tests.reports.storedata import add_grid_run, make_store

Snapshot = dict[str, tuple[bool, int, int]]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    contains: str = ""
    """A fragment the error line must hold (the figure, the flag, 'read-only', ...)."""


def _png(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` pixels (no image data: never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString())


def _tiny_model(dims: list[int | str]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _vector_model(
    op: str, a_dims: list[int], b_dims: list[int], y_dims: list[int]
) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])],
        op.lower(),
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a_dims),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b_dims),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_dims)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("adversarial")
    make_store(ws / "lab.sqlite", runs=2)
    with Store.open(ws / "lab.sqlite") as store:  # run 3: no cell in common with run 1
        add_grid_run(
            store,
            device="desktop",
            runtime="1.31.1",
            label="std",
            speed=1.0,
            seed=9,
            variants=("standard",),
        )
    (ws / "models").mkdir()
    _save(_tiny_model([1, 3, 8, 8]), ws / "tiny.onnx")
    _save(_tiny_model(["N", 3, 8, 8]), ws / "symbolic.onnx")
    negative = _tiny_model([1, 3, 8, 8])
    negative.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -3
    _save(negative, ws / "negative.onnx")
    _save(_vector_model("Gemm", [4], [4], [1]), ws / "gemm1d.onnx")
    _save(_vector_model("MatMul", [], [], []), ws / "matmul0d.onnx")
    (ws / "garbage.onnx").write_bytes(b"\x00not an onnx model\xff" * 8)
    (ws / "afile").write_text("a file, not a directory\n")
    (ws / "empty.sqlite").write_bytes(b"")
    (ws / "text.sqlite").write_text("hello, I am not a database\n")
    (ws / "adir").mkdir()
    (ws / "adir" / "keep.txt").write_text("mine\n")
    (ws / "mine").mkdir()
    for name in ("roofline.png", "prediction.csv", "time_share.svg", "report.html"):
        (ws / "mine" / name).write_text(f"the user's own {name}\n")
    (ws / "not-utf8.toml").write_bytes(b"\xff\xfe[devices.x]\n")
    (ws / "inventory.d").mkdir()
    (ws / "inf.toml").write_text('[devices.x]\nhost = "h"\nconnect_timeout_s = inf\n')
    (ws / "nan.toml").write_text('[devices.x]\nhost = "h"\nconnect_timeout_s = nan\n')
    (ws / "neg.toml").write_text('[devices.x]\nhost = "h"\nconnect_timeout_s = -1\n')
    (ws / "unknown-key.toml").write_text('[devices.x]\nhost = "h"\ncolour = "blue"\n')
    (ws / "broken.toml").write_text("[[[devices\n")
    (ws / "top.toml").write_text('[machines.x]\nhost = "h"\n')
    (ws / "workdir.toml").write_text('[devices.l]\nkind = "local"\nworkdir = "/dev/null/x"\n')
    (ws / "cpus.toml").write_text('[devices.l]\nkind = "local"\ncpus = "0-1000000"\n')
    (ws / "port.toml").write_text('[devices.x]\nhost = "h"\nport = 70000\n')
    for folder, size in (
        ("narrow", (1, 100_000)),
        ("huge", (20_000, 20_000)),
        ("big", (8000, 8000)),
    ):
        (ws / f"calib-{folder}").mkdir()
        (ws / f"calib-{folder}" / "a.png").write_bytes(_png(*size))
    (ws / "calib-broken").mkdir()
    (ws / "calib-broken" / "a.png").write_bytes(b"\x89PNG broken")
    (ws / "calib-empty").mkdir()
    (ws / "accuracy.csv").write_text("alpha,resolution\n1.0,224\n")
    return ws


def snapshot(root: Path) -> Snapshot:
    state: Snapshot = {}
    for path in root.rglob("*"):
        info = path.lstat()
        state[str(path.relative_to(root))] = (path.is_dir(), info.st_size, info.st_mtime_ns)
    return state


@pytest.fixture
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("MNBENCH_DB", str(workspace / "lab.sqlite"))
    monkeypatch.setenv("MNBENCH_MODELS", str(workspace / "models"))
    monkeypatch.setenv("MNBENCH_CACHE", str(workspace / "cache"))
    monkeypatch.delenv("MNBENCH_INVENTORY", raising=False)
    yield workspace


# ---------------------------------------------------------------------------- the table

NON_FINITE = ("nan", "NaN", "inf", "-inf", "Infinity", "1e999")
NOT_NUMBERS = ("x", "", "1,5", "0x10")


def _float_cases(
    verb: tuple[str, ...], flag: str, extra: tuple[str, ...], zero_ok: bool = False
) -> list[Case]:
    values = (*NON_FINITE, *NOT_NUMBERS, "-1", *(() if zero_ok else ("0",)), *extra)
    return [Case(f"{' '.join(verb)} {flag} {v!r}", (*verb, flag, v)) for v in values]


def _int_cases(verb: tuple[str, ...], flag: str, extra: tuple[str, ...] = ()) -> list[Case]:
    values = ("-1", "1.5", "x", "nan", "99999999999999999999999", "1e3", *extra)
    return [Case(f"{' '.join(verb)} {flag} {v!r}", (*verb, flag, v)) for v in values]


RUN = ("run",)
REGRESS = ("regress", "--baseline", "current", "--candidate", "current")
LAYERS = ("layers",)
GENERATE = ("generate",)

CASES: list[Case] = [
    # numeric flags: non-finite, not numbers, out of range
    *_float_cases(RUN, "--timeout", ("86401",)),
    *_float_cases(RUN, "--min-time", ("1e6",)),
    *_float_cases(RUN, "--max-time", ()),
    *_float_cases(RUN, "--target-ci", ("101",)),
    *_float_cases(RUN, "--alpha", ("2.5",)),
    *_float_cases(RUN, "--rho", ("100",)),
    *_float_cases(GENERATE, "--alpha", ("3",)),
    *_float_cases(LAYERS, "--alpha", ("2.01",)),
    *_float_cases(LAYERS, "--max-time", ()),
    *_float_cases(REGRESS, "--max-time", ()),
    *_float_cases(REGRESS, "--min-time", ()),
    *_float_cases(REGRESS, "--target-ci", ()),
    *_float_cases(REGRESS, "--threshold", ("-50",), zero_ok=True),
    *_float_cases(("compare", "1", "2"), "--threshold", ("-50", "1001"), zero_ok=True),
    *_int_cases(RUN, "--trials", ("0",)),
    *_int_cases(RUN, "--threads", ("0", "1025")),
    *_int_cases(RUN, "--resolution", ("31", "4097")),
    *_int_cases(RUN, "--kernel", ("0", "13")),
    *_int_cases(RUN, "--max-plan", ("0",)),
    *_int_cases(RUN, "--max-trials", ("0",)),
    *_int_cases(RUN, "--budget", ("0",)),
    *_float_cases(RUN, "--cooldown-max", ("86401",), zero_ok=True),
    *[
        Case(f"run --cooldown {v!r}", ("run", "--cooldown", v), contains="--cooldown")
        for v in ("hot", "45", "45F", "-3C", "200C", "nanC", "1e9s")
    ],
    *_int_cases(GENERATE, "--max-memory-mib", ("0",)),
    *_int_cases(LAYERS, "--block", ("0", "14")),
    *_int_cases(LAYERS, "--threads", ("0",)),
    *_int_cases(REGRESS, "--threads", ("0",)),
    *_int_cases(REGRESS, "--trials", ("0",)),
    *_int_cases(REGRESS, "--confirm", ()),
    *_int_cases(REGRESS, "--seed", ()),
    Case("regress --trials 1", (*REGRESS, "--trials", "1"), contains="at least 2"),
    Case("regress min above max", (*REGRESS, "--min-time", "5", "--max-time", "1")),
    Case(
        "regress bad release", ("regress", "--baseline", "onnxruntime==x", "--candidate", "current")
    ),
    Case("run min above max", ("run", "--min-time", "5", "--max-time", "1"), contains="--max-time"),
    Case("layers min above max", ("layers", "--min-time", "5", "--max-time", "1")),
    Case("layers even kernel", ("layers", "--kernel", "4"), contains="odd"),
    Case("generate even kernel", ("generate", "--kernel", "4"), contains="odd"),
    # resources: estimated before anything is allocated, with the figure and the flag
    Case(
        "generate 2.0 standard k7",
        (
            "generate",
            "--alpha",
            "2",
            "--resolution",
            "32",
            "--variant",
            "standard",
            "--kernel",
            "7",
        ),
        contains="MiB",
    ),
    Case(
        "generate 2.0 standard k5",
        (
            "generate",
            "--alpha",
            "2",
            "--resolution",
            "32",
            "--variant",
            "standard",
            "--kernel",
            "5",
        ),
        contains="--max-memory-mib",
    ),
    Case(
        "generate int8 4096",
        ("generate", "--alpha", "2", "--resolution", "4096", "--precision", "int8"),
        contains="--max-memory-mib",
    ),
    Case(
        "run 2.0 standard k11",
        ("run", "--alpha", "2", "--resolution", "64", "--variant", "standard", "--kernel", "11"),
    ),
    Case(
        "layers huge probe",
        ("layers", "--alpha", "2", "--kernel", "11"),
        contains="--max-memory-mib",
    ),
    Case("run trials 1e9", ("run", "--trials", "1000000000")),
    Case(
        "generate a huge grid",
        (
            "generate",
            "--alpha",
            *[f"0.{i:04d}" for i in range(1, 1001)],
            "--resolution",
            *map(str, range(32, 43)),
        ),
        contains="10,000",
    ),
    Case("run plan too big", ("run", "--trials", "100000"), contains="--max-plan"),
    Case(
        "run plan over a lowered limit",
        ("run", "--trials", "3", "--max-plan", "10"),
        contains="48 measurements",
    ),
    Case("layers plan too big", ("layers", "--trials", "1000000"), contains="--max-plan"),
    Case("regress plan too big", (*REGRESS, "--trials", "100000"), contains="--max-plan"),
    Case("cpus 0-3000000000", ("run", "--cpus", "0-3000000000"), contains="4095"),
    Case("cpus 0-1000000", ("run", "--cpus", "0-1000000"), contains="4095"),
    Case("cpus backwards", ("run", "--cpus", "3-1"), contains="backwards"),
    Case("cpus words", ("run", "--cpus", "fast")),
    Case("cpus empty piece", ("run", "--cpus", "0,,1")),
    Case("cpus huge mask", ("run", "--cpus", "0x" + "f" * 2000)),
    Case("cpus bad mask", ("run", "--cpus", "0xzz")),
    Case("cpus long list", ("run", "--cpus", ",".join(["1"] * 500))),
    Case("layers cpus", ("layers", "--cpus", "0-99999999")),
    Case(
        "calibration 1x100000",
        (
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-narrow",
        ),
        contains="16:1",
    ),
    Case(
        "calibration bomb",
        (
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-huge",
        ),
        contains="pixels",
    ),
    Case(
        "calibration over budget",
        (
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-big",
        ),
        contains="budget",
    ),
    Case(
        "calibration broken",
        (
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-broken",
        ),
    ),
    Case(
        "calibration empty",
        (
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-empty",
        ),
    ),
    Case("calibration missing", ("generate", "--precision", "int8", "--calibration", "nowhere")),
    Case("calibration fp32", ("generate", "--calibration", "calib-big")),
    Case(
        "run calibration bomb",
        (
            "run",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "calib-huge",
        ),
    ),
    # shapes and model files
    Case("cost directory", ("cost", "adir"), contains="is a directory"),
    Case("cost missing", ("cost", "missing.onnx"), contains="does not exist"),
    Case("cost garbage", ("cost", "garbage.onnx")),
    Case("cost negative dim", ("cost", "negative.onnx"), contains="negative dimension"),
    Case("cost shape typo", ("cost", "tiny.onnx", "--shape", "typo=1x3x8x8"), contains="typo"),
    Case("cost shape int64", ("cost", "tiny.onnx", "--shape", "input=99999999999999999999x3x8x8")),
    Case("cost shape negative", ("cost", "tiny.onnx", "--shape", "input=-1x3x8x8")),
    Case("cost shape zero", ("cost", "tiny.onnx", "--shape", "input=0x3x8x8")),
    Case(
        "cost shape huge",
        ("cost", "tiny.onnx", "--shape", "input=100000x3x1000x1000"),
        contains="limit",
    ),
    Case("cost shape rank", ("cost", "tiny.onnx", "--shape", "input=1x3")),
    Case(
        "cost shape twice",
        ("cost", "tiny.onnx", "--shape", "input=1x3x8x8", "--shape", "input=1x3x8x8"),
    ),
    Case("cost shape no name", ("cost", "tiny.onnx", "--shape", "=1x3x8x8")),
    Case("cost shape no dims", ("cost", "tiny.onnx", "--shape", "input=")),
    Case("cost shape float", ("cost", "tiny.onnx", "--shape", "input=1.5x3x8x8")),
    Case("cost shape nan", ("cost", "tiny.onnx", "--shape", "input=nanx3x8x8")),
    Case("cost gemm 1-D", ("cost", "gemm1d.onnx"), code=0),
    Case("cost matmul 0-D", ("cost", "matmul0d.onnx", "--format", "json"), code=0),
    Case("cost bad format", ("cost", "tiny.onnx", "--format", "xml")),
    Case("run model missing", ("run", "--model", "missing.onnx")),
    Case("run model directory", ("run", "--model", "adir"), contains="is a directory"),
    Case("run model garbage", ("run", "--model", "garbage.onnx")),
    Case(
        "run shape typo",
        ("run", "--model", "tiny.onnx", "--shape", "typo=1x3x8x8"),
        contains="typo",
    ),
    Case(
        "run shape int64",
        ("run", "--model", "tiny.onnx", "--shape", "input=9223372036854775808x3x8x8"),
    ),
    Case("run negative dim", ("run", "--model", "negative.onnx"), contains="negative"),
    Case("run shape without model", ("run", "--shape", "input=1x3x8x8"), contains="--model"),
    # run ids and labels
    Case("results run beyond int64", ("results", "--run", "99999999999999999999")),
    Case("results run int64 max", ("results", "--run", "9223372036854775807"), contains="no run"),
    Case("results unknown label", ("results", "--run", "nope")),
    Case("results bad format", ("results", "--format", "xml")),
    Case("report run beyond int64", ("report", "--run", "99999999999999999999", "--out", "out")),
    Case("report unknown run", ("report", "--run", "77", "--out", "out")),
    Case("report all and more", ("report", "--run", "all", "1", "--out", "out")),
    Case("compare beyond int64", ("compare", "1", "99999999999999999999")),
    Case("compare unknown", ("compare", "1", "77")),
    Case("compare no common cell", ("compare", "1", "3"), contains="no cell in common"),
    Case("layers from-run beyond int64", ("layers", "--from-run", "99999999999999999999")),
    Case(
        "layers from-run without probes", ("layers", "--from-run", "1"), contains="no layer probes"
    ),
    Case("run resume beyond int64", ("run", "--resume", "99999999999999999999")),
    Case("run resume unknown", ("run", "--resume", "77")),
    Case("run label newline", ("run", "--label", "a\nb")),
    Case("run label escape", ("run", "--label", "\x1b]0;pwned\x07")),
    Case("run label too long", ("run", "--label", "x" * 500)),
    Case("run label a number", ("run", "--label", "12")),
    Case("run label latest", ("run", "--label", "latest")),
    Case("layers label newline", ("layers", "--label", "a\nb")),
    # databases: missing, wrong, directories; read verbs never create one
    Case("results missing db", ("results", "--db", "none.sqlite"), contains="no results database"),
    Case("results db directory", ("results", "--db", "adir")),
    Case("results db text", ("results", "--db", "text.sqlite")),
    Case("results empty db", ("results", "--db", "empty.sqlite"), contains="no runs"),
    Case("results list empty db", ("results", "--list", "--db", "empty.sqlite")),
    Case("report missing db", ("report", "--db", "none.sqlite", "--out", "out")),
    Case("report empty db", ("report", "--db", "empty.sqlite", "--out", "out")),
    Case("compare missing db", ("compare", "1", "2", "--db", "none.sqlite")),
    Case("compare empty db", ("compare", "1", "2", "--db", "empty.sqlite")),
    Case("layers from-run missing db", ("layers", "--from-run", "1", "--db", "none.sqlite")),
    Case("run resume missing db", ("run", "--resume", "1", "--db", "none.sqlite")),
    Case("run db directory", ("run", "--db", "adir", "--trials", "0")),
    Case("run db text", ("run", "--db", "text.sqlite", "--model", "missing.onnx")),
    Case("env db missing", ("results",), env={"MNBENCH_DB": "gone/none.sqlite"}),
    # output directories
    Case("report into a file", ("report", "--out", "afile"), contains="not a directory"),
    Case("report under a file", ("report", "--out", "afile/sub")),
    Case(
        "report into foreign dir", ("report", "--out", "adir"), contains="no earlier mnbench report"
    ),
    Case("report into user's charts", ("report", "--out", "mine"), contains="--out"),
    Case("report accuracy missing", ("report", "--accuracy", "missing.csv", "--out", "out")),
    Case("report accuracy columns", ("report", "--accuracy", "accuracy.csv", "--out", "out")),
    Case("generate out a file", ("generate", "--out", "afile"), contains="--out"),
    Case("generate out under a file", ("generate", "--out", "afile/models")),
    Case("run models-dir a file", ("run", "--models-dir", "afile"), contains="--models-dir"),
    Case("layers models-dir a file", ("layers", "--models-dir", "afile")),
    Case("env models a file", ("run",), env={"MNBENCH_MODELS": "afile"}, contains="MNBENCH_MODELS"),
    Case("generate env models a file", ("generate",), env={"MNBENCH_MODELS": "afile/x"}),
    Case("cost a device file", ("cost", "/dev/null"), contains="not a regular file"),
    Case("results db device file", ("results", "--db", "/dev/null")),
    Case("report out device file", ("report", "--out", "/dev/null")),
    # devices: URLs, inventories
    Case("url unclosed bracket", ("devices", "show", "ssh://[::1"), contains="malformed"),
    Case("url bad bracket host", ("devices", "show", "ssh://u@[zz]"), contains="malformed"),
    Case("url timeout inf", ("devices", "show", "ssh://h?connect_timeout_s=inf")),
    Case("url timeout nan", ("devices", "show", "ssh://h?connect_timeout_s=nan")),
    Case("url timeout negative", ("devices", "show", "ssh://h?connect_timeout_s=-5")),
    Case("url timeout huge", ("devices", "show", "ssh://h?connect_timeout_s=1e300")),
    Case("url timeout word", ("devices", "show", "ssh://h?connect_timeout_s=soon")),
    Case("url unknown parameter", ("devices", "show", "ssh://h?colour=blue")),
    Case("url password", ("devices", "show", "ssh://u:secret@h"), contains="password"),
    Case("url port range", ("devices", "show", "ssh://h:99999")),
    Case("url port word", ("devices", "show", "ssh://h:ssh")),
    Case("url no host", ("devices", "show", "ssh://")),
    Case("url path", ("devices", "show", "ssh://h/tmp")),
    Case("url whitespace", ("devices", "show", "ssh://h ost")),
    Case("url scheme", ("devices", "show", "ftp://h")),
    Case("url adb empty", ("devices", "show", "adb://")),
    Case("url adb server", ("devices", "show", "adb://x?server=nohost")),
    Case("url accept flag", ("devices", "show", "ssh://h?accept_new_host_key=maybe")),
    Case("url twice", ("devices", "show", "ssh://h?python=a&python=b")),
    Case("url cpus huge", ("devices", "show", "ssh://h?cpus=0-1000000")),
    Case("run url malformed", ("run", "--device", "ssh://[::1")),
    Case("run url timeout inf", ("run", "--device", "ssh://h?connect_timeout_s=inf")),
    Case("regress url malformed", (*REGRESS, "--device", "ssh://u@[zz]")),
    Case("layers url malformed", ("layers", "--device", "ssh://[::1")),
    Case("devices show no name", ("devices", "show")),
    Case("devices check no name", ("devices", "check")),
    Case("devices unknown", ("devices", "show", "nosuch")),
    Case("devices bad action", ("devices", "frobnicate")),
    Case(
        "inventory directory",
        ("devices", "list", "--inventory", "inventory.d"),
        contains="directory",
    ),
    Case(
        "inventory not utf-8", ("devices", "list", "--inventory", "not-utf8.toml"), contains="UTF-8"
    ),
    Case("inventory missing", ("devices", "show", "x", "--inventory", "none.toml")),
    Case("inventory inf", ("devices", "show", "x", "--inventory", "inf.toml")),
    Case("inventory nan", ("devices", "show", "x", "--inventory", "nan.toml")),
    Case("inventory negative", ("devices", "show", "x", "--inventory", "neg.toml")),
    Case("inventory unknown key", ("devices", "show", "x", "--inventory", "unknown-key.toml")),
    Case("inventory broken toml", ("devices", "list", "--inventory", "broken.toml")),
    Case("inventory top-level", ("devices", "list", "--inventory", "top.toml")),
    Case("inventory port", ("devices", "show", "x", "--inventory", "port.toml")),
    Case("inventory env", ("devices", "list"), env={"MNBENCH_INVENTORY": "inventory.d"}),
    Case("run inventory directory", ("run", "--device", "x", "--inventory", "inventory.d")),
    Case(
        "run local workdir",
        ("run", "--device", "l", "--inventory", "workdir.toml"),
        contains="workdir",
    ),
    Case("devices local workdir", ("devices", "show", "l", "--inventory", "workdir.toml")),
    Case(
        "run inventory cpus",
        (
            "run",
            "--device",
            "l",
            "--inventory",
            "cpus.toml",
            "--model",
            "tiny.onnx",
            "--db",
            "fresh.sqlite",
        ),
        contains="4095",
    ),
    # runtimes and the cache
    Case("runtime bad spec", ("runtime", "add", "onnxruntime==latest")),
    Case("runtime no spec", ("runtime", "add")),
    Case("runtime remove missing", ("runtime", "remove", "onnxruntime==1.0.0")),
    Case("runtime bad action", ("runtime", "upgrade")),
    Case("runtime injection", ("runtime", "add", "onnxruntime==1.0; touch x")),
    Case(
        "runtime cache is a file",
        ("runtime", "list"),
        env={"MNBENCH_CACHE": "afile"},
        contains="MNBENCH_CACHE",
    ),
    Case(
        "runtime cache under a file",
        ("runtime", "add", "onnxruntime==1.20.0"),
        env={"MNBENCH_CACHE": "afile/x"},
    ),
    # the CLI itself
    Case("no verb", ()),
    Case("unknown verb", ("frobnicate",)),
    Case("unknown flag", ("run", "--frobnicate")),
    Case("generate variant", ("generate", "--variant", "dense")),
    Case("generate precision", ("generate", "--precision", "int4")),
    Case("generate rho and resolution", ("generate", "--rho", "1", "--resolution", "224")),
    Case("generate empty alpha", ("generate", "--alpha")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_without_side_effects(
    case: Case,
    in_workspace: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = snapshot(in_workspace)
    code = main(list(case.argv))
    out, err = capsys.readouterr()
    assert code == case.code, err
    assert "Traceback" not in err + out
    if case.code == 2:
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("mnbench: error: "), err
        assert len(lines[0]) < 400, f"{len(lines[0])} characters"
        assert case.contains in lines[0]
    assert snapshot(in_workspace) == before


def test_table_is_large_and_covers_every_verb() -> None:
    from harness.commands import COMMANDS

    assert len(CASES) >= 200
    verbs = {c.argv[0] for c in CASES if c.argv}
    issue_verbs = {"generate", "cost", "run", "results", "report", "compare", "regress"}
    issue_verbs |= {"layers", "devices", "runtime"}
    assert issue_verbs <= verbs <= {*COMMANDS, "frobnicate"}
    assert len({c.id for c in CASES}) == len(CASES)
    assert MAX_PLAN_ITEMS < 16 * 100_000


def test_json_never_prints_nan(in_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stored NaN (failed measurements) and cost-less nodes come out as null: strict JSON."""
    import json

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the JSON output")

    for argv in (["cost", "matmul0d.onnx", "--format", "json"], ["results", "--run", "1"]):
        assert main([*argv, "--format", "json"] if argv[0] == "results" else argv) == 0
        text = capsys.readouterr().out
        assert json.loads(text, parse_constant=refuse)


def test_dollar_labels_do_not_break_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mathtext in a label: drawn as text, not parsed (matplotlib would raise)."""
    db = tmp_path / "lab.sqlite"
    with Store.open(db) as store:
        add_grid_run(store, device="$\\foo$", runtime="1.0", label="$\\frac{", speed=1.0, seed=0)
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "r")]) == 0
    assert "$\\frac{" in (tmp_path / "r" / "report.html").read_text()
