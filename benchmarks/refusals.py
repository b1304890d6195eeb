"""Wall time and peak memory of refusing the inputs that used to exhaust the machine.

Each command runs in a fresh ``mnbench`` process (as a user would run it), several times;
printed are the exit code, the median wall time and the peak resident set size of the
process (``wait4``'s ``ru_maxrss``), beside ``mnbench --version`` as the floor of starting
the interpreter and importing the CLI. Before the estimates these inputs took 8.1 GB
(generation), a MemoryError (the plan) or minutes (CPU ranges, a calibration image).

    python benchmarks/refusals.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("floor: mnbench --version", ["--version"]),
    (
        "generate 2.0/32 standard k7",
        [
            "generate",
            "--alpha",
            "2",
            "--resolution",
            "32",
            "--variant",
            "standard",
            "--kernel",
            "7",
        ],
    ),
    (
        "generate int8 2.0/4096",
        ["generate", "--alpha", "2", "--resolution", "4096", "--precision", "int8"],
    ),
    ("run --trials 1000000000", ["run", "--trials", "1000000000"]),
    ("run --trials 100000 (plan)", ["run", "--trials", "100000"]),
    ("run --cpus 0-3000000000", ["run", "--cpus", "0-3000000000"]),
    ("run --timeout nan", ["run", "--timeout", "nan"]),
    (
        "generate --calibration 1x100000 PNG",
        [
            "generate",
            "--precision",
            "int8",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--calibration",
            "CALIB",
        ],
    ),
)


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def measure(argv: list[str], cwd: Path) -> tuple[int, float, int]:
    """(exit code, wall seconds, peak RSS bytes) of one fresh process."""
    mnbench = shutil.which("mnbench", path=os.path.dirname(sys.executable)) or "mnbench"
    start = time.perf_counter()
    process = subprocess.Popen(
        [mnbench, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "calib").mkdir()
        (work / "calib" / "a.png").write_bytes(_png(1, 100_000))
        print(f"{'command':<40} {'exit':>4} {'median s':>9} {'peak RSS MiB':>13}")
        for title, template in COMMANDS:
            argv = [str(work / "calib") if a == "CALIB" else a for a in template]
            runs = [measure(argv, work) for _ in range(args.repeat)]
            codes = {code for code, _, _ in runs}
            wall = statistics.median(seconds for _, seconds, _ in runs)
            peak = max(rss for _, _, rss in runs) / 2**20
            code = codes.pop() if len(codes) == 1 else "mixed"
            print(f"{title:<40} {code!s:>4} {wall:>9.3f} {peak:>13.1f}")
        left = sorted(p.name for p in work.iterdir())
        print(f"files left in the working directory: {left}")


if __name__ == "__main__":
    main()
