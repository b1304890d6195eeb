"""The code's structure, checked: no package imports a package above it, and ``mnbench
--help`` starts without the heavy libraries.

The layer table (docs/architecture.md, "Packages") is ``LAYERS`` below, lowest first: each
package with the packages it may import. Every import of every module under ``harness/``,
``devices/``, ``results/`` and ``reports/`` is read with ``ast`` (imports inside functions and
under ``TYPE_CHECKING`` included: they are dependencies too) and checked against it. Modules
that still live directly in ``harness/`` are given their layer by ``MODULE_LAYERS``.
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
PACKAGES: tuple[str, ...] = ("harness", "devices", "results", "reports")


@dataclass(frozen=True)
class Layer:
    package: str
    may_import: tuple[str, ...]
    """The other layers' packages this one may import (its own is always allowed)."""


_AGENT = "harness.agent"
_MODEL = "harness.model"
_MEASURE = "harness.measure"
_PREDICT = "harness.predict"
_CLI = "harness.cli"

LAYERS: tuple[Layer, ...] = (
    Layer(_AGENT, ()),
    Layer(_MODEL, (_AGENT,)),
    Layer("devices", (_AGENT,)),
    Layer("results", (_AGENT, _MODEL)),
    Layer(_MEASURE, (_AGENT, _MODEL, "devices", "results")),
    Layer(_PREDICT, (_AGENT, _MODEL, "devices", "results", _MEASURE)),
    Layer("reports", (_AGENT, _MODEL, "devices", "results", _MEASURE, _PREDICT)),
    Layer(_CLI, (_AGENT, _MODEL, "devices", "results", _MEASURE, _PREDICT, "reports")),
)
"""The layer table, lowest first."""

PACKAGE_LAYERS: dict[str, str] = {
    _AGENT: _AGENT,
    _MODEL: _MODEL,
    _MEASURE: _MEASURE,
    _PREDICT: _PREDICT,
    "harness.cli": _CLI,
    "harness.commands": _CLI,
    "devices": "devices",
    "results": "results",
    "reports": "reports",
}
"""Package (module prefix) -> its layer."""

MODULE_LAYERS: dict[str, str] = {
    # The package itself holds only __version__: importable from every layer.
    "harness": _AGENT,
    # Whether a pid still lives: stdlib only, needed by device locks and the store's leases.
    "harness.processes": _AGENT,
    # Facts derived from the layer table (layer cards, profile nodes -> layers, 1/N + 1/D_K²),
    # which the store and the report need: below both.
    "harness.model.layers": _MODEL,
    # Small standard-library helpers, at the lowest host layer that uses them: UserError and
    # the stop signals, atomic file writes, text tables, argument checks.
    "harness.errors": _MODEL,
    "harness.files": _MODEL,
    "harness.table": _MODEL,
    "harness.validate": _MODEL,
    "harness.__main__": _CLI,
}
"""Modules directly in ``harness/`` -> the layer they belong to."""

ALLOWED: dict[tuple[str, str], str] = {}
"""Known upward imports, each with where it goes: (importing module, imported module)."""


def _layer_of(module: str) -> str | None:
    """The layer of a project module; None for a module of no project package."""
    best = ""
    for prefix in (*MODULE_LAYERS, *PACKAGE_LAYERS):
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best:
        return MODULE_LAYERS.get(best) or PACKAGE_LAYERS[best]
    if module.split(".", maxsplit=1)[0] in PACKAGES:
        raise AssertionError(f"{module} has no layer: add it to MODULE_LAYERS")
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


def test_the_layer_table_is_ordered() -> None:
    seen: set[str] = set()
    for layer in LAYERS:
        assert set(layer.may_import) <= seen, f"{layer.package} may import a layer above it"
        seen.add(layer.package)
    assert set(PACKAGE_LAYERS.values()) | set(MODULE_LAYERS.values()) <= seen


def test_every_module_has_a_layer() -> None:
    for path in _sources():
        assert _layer_of(_module_name(path)) is not None


def test_no_package_imports_a_package_above_it() -> None:
    found = _violations()
    new = {pair: why for pair, why in found.items() if pair not in ALLOWED}
    assert not new, "\n".join(f"{a} imports {b}: {why}" for (a, b), why in sorted(new.items()))


def test_the_allow_list_holds_only_open_violations() -> None:
    stale = set(ALLOWED) - set(_violations())
    assert not stale, f"no longer violated, remove from ALLOWED: {sorted(stale)}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from results.store import Store\n"
        "def f() -> None:\n    from harness.errors import UserError\n    import reports.html\n",
        encoding="utf-8",
    )
    assert _imports(source) == {"results.store", "harness.errors", "reports.html"}
    assert _layer_of("devices.transport") == "devices"
    assert _layer_of("harness.errors") == _MODEL
    assert _layer_of("numpy") is None


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
