"""Benchmark: the structure of the tree -- its layers with their lines and the imports between
them (the layer table of ``tests/test_structure.py``), circles and the longest modules -- then
start-up time of ``mnbench --help`` and ``mnbench cost MODEL``, lines of code per package,
repeated blocks and the sha256 of the generated grid, for this tree and (``--baseline DIR``)
another checkout.

Start-up is measured in fresh processes (``python -m harness ...`` with the tree as working
directory and first on ``PYTHONPATH``, so each tree runs its own code), several runs each;
the trees' runs are interleaved in one loop so both see the same machine load, and medians
are printed with their ratio. Lines of code count every line of the ``.py`` files of each
package (``harness/`` rest: what is directly in ``harness/`` and its other sub-packages).
Repeated blocks come from a ``duplicates`` command when one is on PATH.

The generated models (the 16-cell grid and the 1.0/224 standard baseline) must be
byte-identical between the two trees: a restructuring that changes a model changes every
result's identity.

    python benchmarks/structure.py [--baseline DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import test_structure as structure  # noqa: E402  (the layer table and its reader)

PACKAGES: tuple[str, ...] = ("mobilenet", "devices", "results", "reports", "harness", "benchmarks")
"""The top-level folders whose lines are counted in both trees."""


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONWARNINGS", None)
    return env


def _run_s(tree: Path, argv: list[str]) -> float:
    """Wall seconds of one fresh ``python -m harness ARGV`` in ``tree`` (it must exit 0)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        check=False,
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tree}: mnbench {' '.join(argv)} exited {done.returncode}")
    return elapsed


def _check_tree(tree: Path) -> None:
    """Refuse a tree whose own harness package is not the one imported from it."""
    done = subprocess.run(
        [sys.executable, "-c", "import harness; print(harness.__file__)"],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    where = Path(done.stdout.strip()).resolve()
    if not where.is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree} imports harness from {where}, not its own")


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


def lines_of_code(tree: Path) -> dict[str, int]:
    """Lines of the .py files per top-level folder of ``PACKAGES``."""
    return {
        name: sum(_lines(f) for f in sorted((tree / name).rglob("*.py")))
        if (tree / name).is_dir()
        else 0
        for name in PACKAGES
    }


def repeated_blocks(tree: Path) -> str | None:
    """The first line (the count of pairs) of ``duplicates`` over the tree, if installed."""
    program = shutil.which("duplicates")
    if program is None:
        return None
    done = subprocess.run(
        [program, "--repo", str(tree), "--most", "1", "--seconds", "120"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else "(no output)"


def print_layers() -> None:
    """This tree's layers (lowest first): modules, lines, and the layers each one imports."""
    sources = structure._sources()
    lines: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    arrows: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    upward = 0
    order = [layer.package for layer in structure.LAYERS]
    for path in sources:
        importer = structure._module_name(path)
        layer = structure._layer_of(importer)
        assert layer is not None
        lines[layer] += _lines(path)
        modules[layer] += 1
        for imported in structure._imports(path):
            target = structure._layer_of(imported)
            if target is not None and target != layer:
                arrows[layer][target] += 1
                upward += order.index(target) > order.index(layer)
    print("layers, lowest first (imports: the lower layers this one imports, times):")
    for package in order:
        targets = sorted(arrows[package].items(), key=lambda item: order.index(item[0]))
        used = ", ".join(f"{target} {count}" for target, count in targets) or "-"
        size = f"{modules[package]:>3} modules {lines[package]:>6} lines"
        print(f"  {package:<17} {size}  imports: {used}")
    circles = structure._circles()
    print(f"imports that run back up: {upward}")
    print(
        f"circles between files: {len(circles)}"
        + "".join(f"\n  {' <-> '.join(sorted(c))}" for c in sorted(circles, key=sorted))
    )
    longest = sorted(((_lines(p), structure._module_name(p)) for p in sources), reverse=True)[:5]
    print("longest modules: " + ", ".join(f"{name} {count}" for count, name in longest))
    commands = sorted(
        ((_lines(p), p.stem) for p in sources if p.parent.name == "commands"), reverse=True
    )[:3]
    print("longest command modules: " + ", ".join(f"{name} {count}" for count, name in commands))


GRIDS: tuple[tuple[str, ...], ...] = (
    (),
    ("--variant", "standard", "--alpha", "1.0", "--resolution", "224"),
)
"""What ``mnbench generate`` writes for the identity check: the 16-cell grid, the baseline."""


def generated_sha256(tree: Path, out: Path) -> dict[str, str]:
    """File name -> sha256 of every model the tree's ``mnbench generate`` writes for GRIDS."""
    for grid in GRIDS:
        subprocess.run(
            [sys.executable, "-m", "harness", "generate", *grid, "--out", str(out)],
            cwd=tree,
            env=_env(tree),
            capture_output=True,
            check=True,
            timeout=900,
        )
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.onnx"))}


GENERATE: tuple[str, ...] = ("--alpha", "0.25", "--resolution", "128")
"""The model ``mnbench cost`` reads: one small grid cell."""


def _model(tree: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "harness", "generate", *GENERATE, "--out", str(out)],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        check=True,
        timeout=600,
    )
    return sorted(out.glob("*.onnx"))[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare against")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    args = parser.parse_args()
    trees: dict[str, Path] = {"current": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    for tree in trees.values():
        _check_tree(tree)
    print_layers()
    with tempfile.TemporaryDirectory() as temp:
        model = _model(ROOT, Path(temp) / "models")
        commands = {
            "mnbench --help": ["--help"],
            f"mnbench cost {model.name}": ["cost", str(model)],
        }
        timings: dict[tuple[str, str], list[float]] = {
            (tree, command): [] for tree in trees for command in commands
        }
        for tree in trees.values():  # one warm-up each: file caches, .pyc files
            for argv in commands.values():
                _run_s(tree, argv)
        for _ in range(args.runs):
            for command, argv in commands.items():
                for tree_name, tree in trees.items():
                    timings[(tree_name, command)].append(_run_s(tree, argv))
    print(f"start-up, median of {args.runs} fresh processes (interleaved):")
    for command in commands:
        medians = {t: statistics.median(timings[(t, command)]) for t in trees}
        cells = "  ".join(f"{t} {1000 * m:7.0f} ms" for t, m in medians.items())
        ratio = (
            f"  current/baseline {medians['current'] / medians['baseline']:.2f}"
            if "baseline" in medians
            else ""
        )
        print(f"  {command:<40} {cells}{ratio}")
    counts = {name: lines_of_code(tree) for name, tree in trees.items()}
    print("lines of code (.py lines per package):")
    print(f"  {'package':<16}" + "".join(f"{name:>10}" for name in trees))
    for row in PACKAGES:
        print(f"  {row:<16}" + "".join(f"{counts[name][row]:>10}" for name in trees))
    print(f"  {'total':<16}" + "".join(f"{sum(counts[n].values()):>10}" for n in trees))
    for name, tree in trees.items():
        found = repeated_blocks(tree)
        if found is None:
            print("repeated blocks: no duplicates command on PATH")
            break
        print(f"repeated blocks ({name}): {found}")
    if "baseline" in trees:
        with tempfile.TemporaryDirectory() as temp:
            digests = {
                name: generated_sha256(tree, Path(temp) / name) for name, tree in trees.items()
            }
        same = sum(digests["current"].get(k) == v for k, v in digests["baseline"].items())
        print(
            f"generated models byte-identical to the baseline's: {same} of "
            f"{len(digests['baseline'])} (current wrote {len(digests['current'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
