"""Benchmark: ``make demo`` from a fresh clone on a fresh machine (target ≤ 6 minutes).

Clones the repository's committed HEAD into a temporary directory and runs, with ``HOME``
pointing at an empty temporary directory (so no cached virtual environment and no pip
cache), first ``make demo-env`` (the environment: venv, pip, the project and its
dependencies) and then ``make demo`` (the three measurement runs and the report). With
``--again`` it runs ``make demo`` a second time in the same clone, as a user would.

Prints the wall time of each phase, the load average before and after (the machine may be
shared), the demo's closing lines, and every output line that looks like a warning (pip's
"Location ... is ignored" lines come from this machine's pip configuration and are counted
apart).

    python benchmarks/demo.py [--again] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 360.0
WARNING = re.compile(r"warning|deprecat", re.IGNORECASE)
MACHINE_PIP = re.compile(r"Location '.*' is ignored")


def phase(name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, int]:
    """Run one phase; (wall seconds, its merged output, exit status)."""
    print(f"{name}: {' '.join(argv)} (load {os.getloadavg()[0]:.2f})", flush=True)
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    wall_s = time.perf_counter() - start
    output = done.stdout.decode("utf-8", "replace")
    print(f"{name}: {wall_s:.1f} s, exit {done.returncode}", flush=True)
    return wall_s, output, done.returncode


def warnings_in(output: str) -> tuple[list[str], int]:
    """(lines that look like warnings, count of the machine's pip-config lines)."""
    machine = 0
    found: list[str] = []
    for line in output.splitlines():
        if MACHINE_PIP.search(line):
            machine += 1
        elif WARNING.search(line):
            found.append(line.strip())
    return found, machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--again", action="store_true", help="run make demo a second time")
    parser.add_argument("--keep", action="store_true", help="keep the clone and HOME")
    args = parser.parse_args()
    temp = Path(tempfile.mkdtemp(prefix="mnbench-demo-bench-"))
    clone, home = temp / "clone", temp / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MNBENCH_"))}
    env["HOME"] = str(home)
    print(f"clone {clone}, HOME {home}, {os.cpu_count()} CPUs", flush=True)
    load_before = os.getloadavg()
    try:
        env_s, env_out, env_rc = phase("environment", ["make", "demo-env"], clone, env)
        demo_s, demo_out, demo_rc = phase("demo", ["make", "demo"], clone, env)
        outputs = [env_out, demo_out]
        if args.again:
            again_s, again_out, again_rc = phase("demo again", ["make", "demo"], clone, env)
            outputs.append(again_out)
        load_after = os.getloadavg()
        print("--- the demo's last lines")
        print("\n".join(demo_out.strip().splitlines()[-4:]))
        found, machine = warnings_in("\n".join(outputs))
        print(
            f"--- warnings: {len(found)} (plus {machine} pip-configuration lines of this machine)"
        )
        for line in found:
            print(f"  {line}")
        total_s = env_s + demo_s
        print(
            f"environment {env_s:.1f} s + demo {demo_s:.1f} s = {total_s:.1f} s "
            f"(target <= {TARGET_S:.0f} s: {'met' if total_s <= TARGET_S else 'NOT met'}); "
            f"load average before {load_before[0]:.2f}/{load_before[1]:.2f}, after "
            f"{load_after[0]:.2f}/{load_after[1]:.2f} (1/5 min)"
        )
        if args.again:
            print(f"second make demo: {again_s:.1f} s, exit {again_rc}")
        return 0 if env_rc == demo_rc == 0 and (not args.again or again_rc == 0) else 1
    finally:
        if args.keep:
            print(f"kept {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
