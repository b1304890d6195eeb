"""Guards on this machine: which trials get flagged, quiet first, then with a competing load.

One ``mnbench run`` of 4 cells x 4 trials (trial-major, so every cell has trials in both
halves) pinned to one core; once half of its trials are stored, a competing busy loop is
started on that core (bounded: it ends with the run, at most 10 minutes). Per trial it
prints the other-load fraction, steal and load average the guards measured and the flags
they gave; then how many trials of each half were flagged busy. Target (issue "Numbers a
user can trust"): none of the quiet half flagged for a reason that is not real, the loaded
half flagged busy. The machine's own state (other processes' load on that core while the
quiet half ran) is printed too, so a flag in the quiet half can be told real or not.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results.guards import judge_trial

CELLS = ["--alpha", "0.25", "0.5", "--resolution", "128", "160"]
TRIALS = 4


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        (n,) = con.execute("select count(*) from measurements").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        con.close()
    return int(n)


def main() -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite"
        argv = [sys.executable, "-m", "harness", "run", *CELLS, "--trials", str(TRIALS)]
        argv += ["--cpus", str(cpu), "--threads", "1", "--db", str(db)]
        argv += ["--models-dir", str(Path(tmp) / "models"), "--quiet"]
        run = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        total = 4 * TRIALS
        competitor: subprocess.Popen[bytes] | None = None
        started_at = 0
        try:
            while run.poll() is None:
                if competitor is None and _count(db) >= total // 2:
                    started_at = _count(db)
                    competitor = subprocess.Popen(
                        [
                            "taskset",
                            "-c",
                            str(cpu),
                            sys.executable,
                            "-c",
                            "import time\nend=time.perf_counter()+600\n"
                            "while time.perf_counter()<end: pass\n",
                        ]
                    )
                time.sleep(0.2)
        finally:
            if competitor is not None:
                competitor.terminate()
                competitor.wait(timeout=10)
        err = run.stderr.read().decode() if run.stderr else ""
        if run.returncode != 0:
            raise SystemExit(f"mnbench run exited {run.returncode}: {err[-500:]}")
        con = sqlite3.connect(db)
        try:
            rows = con.execute(
                "select id, trial, document from measurements order by id"
            ).fetchall()
        finally:
            con.close()
    print(f"measured core {cpu}; competing load started after trial {started_at} of {total}")
    print(f"{'#':>3s} {'model':24s} {'other load':>10s} {'steal':>6s} {'loadavg':>7s}  flags")
    halves = {"quiet": [0, 0], "loaded": [0, 0]}
    for index, (_, _, text) in enumerate(rows, start=1):
        doc = json.loads(text)
        judgement = judge_trial(doc.get("guards"))
        load = judgement.load
        half = "quiet" if index <= started_at else "loaded"
        halves[half][0] += 1
        halves[half][1] += "busy" in judgement.flags
        name = Path(str(doc["model"]["path"])).name.split("-", 1)[-1].removesuffix(".onnx")
        other = f"{load.other_fraction:.1%}" if load else "-"
        steal = f"{load.steal_fraction:.1%}" if load else "-"
        avg = f"{load.loadavg_1m:.2f}" if load and load.loadavg_1m is not None else "-"
        print(
            f"{index:3d} {name:24s} {other:>10s} {steal:>6s} {avg:>7s}  "
            f"{','.join(judgement.flags) or '-'}"
        )
    for half, (count, busy) in halves.items():
        print(f"{half} half: {busy}/{count} trials flagged busy")


if __name__ == "__main__":
    main()
