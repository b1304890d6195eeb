"""The code's structure, checked: every folder is a layer, no module imports a layer above its
own, no two files import each other in a circle (but the database plugin factory), and
``mnbench --help`` starts without the heavy libraries.

The layer table (docs/architecture.md, "Packages") is ``LAYERS`` below, lowest first: each
folder with the folders it may import. A module's layer is the folder it lives in (the longest
folder of the table that holds it); there are no per-module exceptions. Every import of every
module under the project's packages is read with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` included: they are dependencies too) and checked against it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES: tuple[str, ...] = ("mobilenet", "devices", "results", "reports", "harness")


@dataclass(frozen=True)
class Layer:
    package: str
    may_import: tuple[str, ...]
    """The layers below this one that it may import (its own is always allowed)."""


_AGENT = "devices.agent"
_MEASURE = "harness.measure"
_PREDICT = "harness.predict"
_COMMANDS = "harness.commands"
_CLI = "harness"

LAYERS: tuple[Layer, ...] = (
    Layer(_AGENT, ()),
    Layer("mobilenet", ()),
    Layer("devices", (_AGENT, "mobilenet")),
    Layer("results", (_AGENT, "mobilenet", "devices")),
    Layer("reports", (_AGENT, "mobilenet", "devices", "results")),
    Layer(_MEASURE, (_AGENT, "mobilenet", "devices", "results")),
    Layer(_PREDICT, (_AGENT, "mobilenet", "devices", "results", _MEASURE)),
    Layer(_COMMANDS, (_AGENT, "mobilenet", "devices", "results", "reports", _MEASURE, _PREDICT)),
    Layer(
        _CLI, (_AGENT, "mobilenet", "devices", "results", "reports", _MEASURE, _PREDICT, _COMMANDS)
    ),
)
"""The layer table, lowest first: a folder per layer."""

ALLOWED_CIRCLES: frozenset[frozenset[str]] = frozenset(
    {
        # The database plugin factory: ``open_database`` picks the PostgreSQL class by the
        # URL's scheme, and that class implements the interface ``backend`` defines.
        frozenset({"results.backend", "results.postgres"}),
    }
)
"""Circles between files that are allowed, each with why."""


def _layer_of(module: str) -> str | None:
    """The layer of a project module (the longest folder of the table that holds it); None
    for a module of no project package."""
    best = ""
    for layer in LAYERS:
        prefix = layer.package
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best:
        return best
    if module.split(".", maxsplit=1)[0] in PACKAGES:
        raise AssertionError(f"{module} has no layer: add its folder to LAYERS")
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The project modules one file imports (``from a import b`` is ``a.b`` when b is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if _is_module(name) else node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _violations() -> dict[tuple[str, str], str]:
    allowed = {layer.package: {layer.package, *layer.may_import} for layer in LAYERS}
    found: dict[tuple[str, str], str] = {}
    for path in _sources():
        importer = _module_name(path)
        layer = _layer_of(importer)
        assert layer is not None
        for imported in _imports(path):
            target = _layer_of(imported)
            if target is not None and target not in allowed[layer]:
                found[(importer, imported)] = f"{layer} may not import {target}"
    return found


def _circles() -> set[frozenset[str]]:
    """Every set of files that import each other in a loop (strongly connected components of
    more than one file, Tarjan's algorithm)."""
    graph = {_module_name(path): _imports(path) for path in _sources()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_layer_table_is_ordered() -> None:
    seen: set[str] = set()
    for layer in LAYERS:
        assert set(layer.may_import) <= seen, f"{layer.package} may import a layer above it"
        seen.add(layer.package)


def test_every_layer_is_a_folder() -> None:
    for layer in LAYERS:
        assert (ROOT.joinpath(*layer.package.split(".")) / "__init__.py").is_file(), layer


def test_every_module_has_a_layer() -> None:
    for path in _sources():
        assert _layer_of(_module_name(path)) is not None


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = _violations()
    assert not found, "\n".join(f"{a} imports {b}: {why}" for (a, b), why in sorted(found.items()))


def test_no_circle_between_files() -> None:
    circles = _circles() - ALLOWED_CIRCLES
    assert not circles, "files that import each other: " + "; ".join(
        " <-> ".join(sorted(circle)) for circle in sorted(circles, key=sorted)
    )


def test_the_allowed_circles_still_exist() -> None:
    stale = ALLOWED_CIRCLES - _circles()
    assert not stale, (
        f"no longer a circle, remove from ALLOWED_CIRCLES: {sorted(map(sorted, stale))}"
    )


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from results.store import Store\n"
        "def f() -> None:\n    from mobilenet.errors import UserError\n    import reports.html\n",
        encoding="utf-8",
    )
    assert _imports(source) == {"results.store", "mobilenet.errors", "reports.html"}
    assert _layer_of("devices.transport") == "devices"
    assert _layer_of("devices.agent.stats") == _AGENT
    assert _layer_of("harness.cli") == _CLI
    assert _layer_of("mobilenet.errors") == "mobilenet"
    assert _layer_of("numpy") is None


MAX_MODULE_LINES = 700
"""No module of the project is longer than this."""
MAX_COMMAND_LINES = 250
"""A command module is a page: parse, build a request, call the library, print."""


def _long_modules() -> dict[str, int]:
    """Modules over their limit -> their line count."""
    found: dict[str, int] = {}
    for path in _sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        limit = MAX_COMMAND_LINES if path.parent.name == "commands" else MAX_MODULE_LINES
        if lines > limit:
            found[_module_name(path)] = lines
    return found


def test_no_module_is_too_long() -> None:
    assert not _long_modules(), _long_modules()


HEAVY: tuple[str, ...] = ("onnx", "onnxruntime", "pandas", "matplotlib")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["runtime", "--help"], ["results", "--help"], ["report", "--help"]],
)
def test_help_loads_no_heavy_library(argv: list[str]) -> None:
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['mnbench', *{argv!r}]\n"
        "try:\n    runpy.run_module('harness', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print('LOADED', ','.join(loaded), 'EXIT', code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last == "LOADED  EXIT 0", done.stderr
    assert "usage: mnbench" in done.stdout or "mnbench " in done.stdout
