"""Benchmark: start-up time of ``mnbench --help`` and ``mnbench cost MODEL``, lines of code
per package and repeated blocks, for this tree and (``--baseline DIR``) another checkout.

Start-up is measured in fresh processes (``python -m harness ...`` with the tree as working
directory and first on ``PYTHONPATH``, so each tree runs its own code), several runs each;
the trees' runs are interleaved in one loop so both see the same machine load, and medians
are printed with their ratio. Lines of code count every line of the ``.py`` files of each
package (``harness/`` rest: what is directly in ``harness/`` and its other sub-packages).
Repeated blocks come from a ``duplicates`` command when one is on PATH.

    python benchmarks/structure.py [--baseline DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES: tuple[tuple[str, str], ...] = (
    ("devices/agent", "devices/agent"),
    ("mobilenet", "mobilenet"),
    ("harness/measure", "harness/measure"),
    ("harness/ rest", "harness"),
    ("devices", "devices"),
    ("results", "results"),
    ("reports", "reports"),
    ("benchmarks", "benchmarks"),
)
"""(row name, folder); the rest of harness/ excludes the three sub-packages above it."""


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
    """Lines of the .py files per package row of ``PACKAGES``."""
    counts: dict[str, int] = {}
    nested = [tree / folder for name, folder in PACKAGES if folder.startswith("harness/")]
    for name, folder in PACKAGES:
        base = tree / folder
        files = sorted(base.rglob("*.py")) if base.is_dir() else []
        if folder == "harness":
            files = [f for f in files if not any(f.is_relative_to(n) for n in nested)]
        counts[name] = sum(_lines(f) for f in files)
    return counts


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
    for row, _ in PACKAGES:
        print(f"  {row:<16}" + "".join(f"{counts[name][row]:>10}" for name in trees))
    print(f"  {'total':<16}" + "".join(f"{sum(counts[n].values()):>10}" for n in trees))
    for name, tree in trees.items():
        found = repeated_blocks(tree)
        if found is None:
            print("repeated blocks: no duplicates command on PATH")
            break
        print(f"repeated blocks ({name}): {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
