"""What making children die with the harness costs: starting a process with and without the
``PR_SET_PDEATHSIG`` ``preexec_fn`` (``devices/transport.py``), and the lease heartbeat.

A ``preexec_fn`` makes CPython fork instead of using ``vfork``, so the cost grows with the
harness's own size; the figures are taken in a process that has onnxruntime, onnx and numpy
loaded, as a sweep does. Both variants alternate in one run (ABAB...), 200 starts each, and
the medians and their ratio are printed. A measurement is a fresh runner process of about
a second, so the figure that matters is the difference in ms against that.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy  # noqa: F401 - loaded like in a sweep
import onnx  # noqa: F401
import onnxruntime  # noqa: F401

from devices.transport import die_with_parent
from results.store import Store

STARTS = 200


def _start(preexec: bool) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["/bin/true"],
        start_new_session=True,
        preexec_fn=die_with_parent() if preexec else None,
        check=True,
    )
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    plain: list[float] = []
    guarded: list[float] = []
    for _ in range(STARTS):
        plain.append(_start(False))
        guarded.append(_start(True))
    a, b = statistics.median(plain), statistics.median(guarded)
    print(f"process start, median of {STARTS}: plain {a:.3f} ms, with PR_SET_PDEATHSIG {b:.3f} ms")
    print(f"ratio {b / a:.2f}, difference {b - a:+.3f} ms per measurement")
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "db.sqlite") as store:
        run_id = store.create_run(
            device="local",
            device_kind="local",
            device_facts={},
            config={},
            harness_version="0",
            runtime_version=None,
            label=None,
            lease_holder="benchmark",
        )
        beats = []
        for _ in range(STARTS):
            start = time.perf_counter()
            store.heartbeat(run_id)
            beats.append((time.perf_counter() - start) * 1e3)
        print(f"lease heartbeat, median of {STARTS}: {statistics.median(beats):.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
