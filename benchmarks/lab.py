"""A lab's figures: store throughput (PostgreSQL vs SQLite) and devices measured at once.

Part 1, store throughput: measurements committed per second.

Each writer is a process of its own with its own connection, writing runner documents of a
real size (200 samples) one commit each, as a sweep does (``Store.add_measurement``); the
"lab" rows do what a lab worker does per item instead (claim the next item of its device
under a lease, then commit the measurement and the item in one transaction). Writers wait
on a common start signal and report their own start and end times; the figure is
measurements / (last end - first start). All configurations run in the same invocation,
in interleaved rounds, on a PostgreSQL server started here with its defaults (fsync on,
synchronous_commit on: a commit is on disk when it returns) and an SQLite file in WAL mode
with synchronous=NORMAL (the store's setting). Medians over rounds are printed, with the
ratio of PostgreSQL's 4 writers to SQLite's single writer; a second PostgreSQL database with
``synchronous_commit = off`` gives the figure at SQLite's durability.

Part 2, devices at once: three simulated phones (tests/adbsim, through the real adb client
and a private adb server) and the emulated aarch64 board (Debian's Python under
qemu-user, the cached sysroot of tests/fixtures/build_arm64_sysroot.py) measure one small
grid cell with 2 trials, either one after another (``mnbench run --device D`` for each
device in turn) or all at once (``mnbench run --device P1 P2 P3 BOARD``: a thread per
device through the lab's queue); the wall-time ratio concurrent / sequential is printed. Every
"device" here computes on this machine's cores, which bounds the gain.

Run: ``flock /tmp/mnbench-heavy.lock python benchmarks/lab.py [--part store|devices]``
(needs Debian's postgresql, adb and qemu-user-static).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results.queue import Lab  # noqa: E402
from results.store import Store, config_key  # noqa: E402
from tests.fixtures.postgres import start_server  # noqa: E402

TOTAL = int(os.environ.get("MNBENCH_BENCH_TOTAL", "1200"))
"""Measurements per configuration and round, split evenly over its writers."""
ROUNDS = 3

_WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from results.store import Store, config_key
    from results.queue import Lab
    location, run_id, worker, count, mode, go = sys.argv[1:7]
    run_id, worker, count = int(run_id), int(worker), int(count)
    doc = {"schema": "mnbench.runner/1", "status": "ok",
           "samples_ms": [1.0 + (i % 17) / 100 for i in range(200)],
           "runtime": {"version": "1.32.0"}, "settings": {"min_samples": 10}}
    with Store.open(location) as store:
        lab = Lab(store, "bench", 60.0) if mode == "lab" else None
        while not os.path.exists(go):
            time.sleep(0.0005)
        start = time.time()
        for n in range(count):
            if lab is None:
                store.add_measurement(run_id=run_id, model_sha256="a" * 64,
                    config={"threads": 1, "worker": worker}, trial=n + 1, status="ok",
                    reason=None, document=doc)
            else:
                item = lab.claim(f"dev{worker}")
                assert item is not None and item != "busy", item
                assert lab.complete(item, "ok", None, doc) is not None
        if lab is not None:
            lab.release(f"dev{worker}")
        print(json.dumps({"start": start, "end": time.time()}))
    """
)


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _round(location: str, writers: int, mode: str, tmp: Path, tag: str) -> float:
    """One configuration once: measurements committed per second."""
    per_writer = TOTAL // writers
    with Store.open(location) as store:
        run_id = store.create_run(
            device="bench", device_kind="local", device_facts={}, config={"tag": tag},
            harness_version="bench", runtime_version=None, label=tag,
        )  # fmt: skip
        if mode == "lab":
            lab = Lab(store)
            for worker in range(writers):
                lab.enqueue(
                    tag, f"dev{worker}", run_id,
                    [("a" * 64, config_key({"threads": 1, "worker": worker}), n + 1)
                     for n in range(per_writer)],
                )  # fmt: skip
    go = tmp / f"go-{tag}"
    argv = [sys.executable, "-c", _WRITER, location, str(run_id)]
    processes = [
        subprocess.Popen(
            [*argv, str(worker), str(per_writer), mode, str(go)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(writers)
    ]
    time.sleep(1.5)  # every writer has its connection open
    go.touch()
    spans = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            raise SystemExit(f"writer failed: {err[-2000:]}")
        spans.append(json.loads(out.strip().splitlines()[-1]))
    with Store.open(location) as store:
        assert store.get_run(run_id).measurements == per_writer * writers
    wall_s = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return per_writer * writers / wall_s


def store_throughput() -> None:
    configurations = [
        ("SQLite, 1 writer", "sqlite", 1, "plain"),
        ("SQLite, 4 writers", "sqlite", 4, "plain"),
        ("PostgreSQL, 1 writer", "postgresql", 1, "plain"),
        ("PostgreSQL, 4 writers", "postgresql", 4, "plain"),
        ("PostgreSQL, 4 writers, synchronous_commit=off", "postgresql-async", 4, "plain"),
        ("PostgreSQL, 4 lab workers (claim + commit)", "postgresql", 4, "lab"),
        ("SQLite, 4 lab workers (claim + commit)", "sqlite", 4, "lab"),
    ]
    rates: dict[str, list[float]] = {name: [] for name, *_ in configurations}
    with start_server(durable=True) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["PGPASSFILE"] = str(server.passfile)
        sqlite_path = str(Path(tmp) / "bench.sqlite")
        url = server.create_database("bench")
        # The same durability as SQLite's WAL with synchronous=NORMAL: a crash of the server
        # loses no committed data's consistency, a power cut may lose the last commits.
        lazy_url = server.create_database("bench_async")
        server.psql("postgres", "ALTER DATABASE bench_async SET synchronous_commit = off")
        locations = {"sqlite": sqlite_path, "postgresql": url, "postgresql-async": lazy_url}
        for round_no in range(ROUNDS):
            for index, (name, backend, writers, mode) in enumerate(configurations):
                location = locations[backend]
                tag = f"r{round_no}-c{index}"
                rates[name].append(_round(location, writers, mode, Path(tmp), tag))
    print(f"store throughput: {TOTAL} measurements per configuration, median of {ROUNDS} rounds")
    print(f"(cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f})")
    for name, values in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<44} {statistics.median(values):8.0f} /s   (rounds: {spread})")
    pg4 = statistics.median(rates["PostgreSQL, 4 writers"])
    lite1 = statistics.median(rates["SQLite, 1 writer"])
    pg4_async = statistics.median(rates["PostgreSQL, 4 writers, synchronous_commit=off"])
    print(f"PostgreSQL 4 writers / SQLite 1 writer: {pg4 / lite1:.2f}")
    ratio = pg4_async / lite1
    print(f"PostgreSQL 4 writers, synchronous_commit=off / SQLite 1 writer: {ratio:.2f}")


def _mnbench(cwd: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"mnbench {' '.join(args[:2])} failed: {done.stderr[-3000:]}")
    return time.perf_counter() - start


def devices_at_once(rounds: int = 2) -> None:
    from tests.adbsim import AdbSimulator
    from tests.fixtures.build_arm64_sysroot import ensure_sysroot

    board = ensure_sysroot(log=False)
    adb = shutil.which("adb")
    if adb is None:
        raise SystemExit("adb is not installed (apt-get install adb)")
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        port = _free_port()
        env = {**_env(), "HOME": str(tmp), "ADB_MDNS": "0", "ADB_EMU": "0"}
        subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        phones = [AdbSimulator(tmp / f"phone{i}").start() for i in range(3)]
        try:
            lines = []
            for i, phone in enumerate(phones):
                subprocess.run([adb, "-P", str(port), "connect", phone.serial], env=env,
                               check=True, capture_output=True)  # fmt: skip
                lines.append(
                    f'[devices.phone{i}]\nkind = "adb"\nserial = "{phone.serial}"\n'
                    f'adb = "{adb}"\nadb_server = "127.0.0.1:{port}"\n'
                    f'python = "{sys.executable}"\n'
                )
            lines.append(f"[devices.board]\nkind = \"local\"\npython = '{board.python_command}'\n")
            (tmp / "devices.toml").write_text("\n".join(lines))
            names = ["phone0", "phone1", "phone2", "board"]
            common = ["--inventory", str(tmp / "devices.toml"), "--db", str(tmp / "lab.sqlite")]
            grid = ["--alpha", "0.25", "--resolution", "96", "--threads", "1", "--trials", "2",
                    "--min-time", "0.5", "--max-time", "1", "--target-ci", "50",
                    "--models-dir", str(tmp / "models")]  # fmt: skip
            _mnbench(tmp, env, "generate", *grid[:4], "--out", str(tmp / "models"))
            sequential: list[float] = []
            concurrent: list[float] = []
            per_device: dict[str, list[float]] = {}
            for _ in range(rounds):
                for n in names:
                    per_device.setdefault(n, []).append(
                        _mnbench(tmp, env, "run", "--device", n, "--quiet", *grid, *common)
                    )
                sequential.append(sum(per_device[n][-1] for n in names))
                concurrent.append(_mnbench(tmp, env, "run", "--device", *names, *grid, *common))
        finally:
            for phone in phones:
                phone.close()
            subprocess.run(
                [adb, "-P", str(port), "kill-server"], env=env, capture_output=True, check=False
            )
    seq, conc = statistics.median(sequential), statistics.median(concurrent)
    print("devices at once: 3 simulated phones + the emulated board, 2 trials each")
    print(f"(cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f})")
    for name, value, values in (
        ("one after another", seq, sequential),
        ("all at once", conc, concurrent),
    ):
        print(f"  {name:<18} {value:7.1f} s   (rounds: {', '.join(f'{v:.1f}' for v in values)})")
    alone = {name: statistics.median(values) for name, values in per_device.items()}
    print("  each device alone: " + ", ".join(f"{k} {v:.1f} s" for k, v in alone.items()))
    # Every device computes on this machine's cores. Were each device one busy core all
    # along, the best would be the longest device alone or the whole work spread over the
    # cores, whichever is longer (a rough bound: part of a device's time is waiting).
    longest = max(alone, key=lambda name: alone[name])
    spread_s = sum(alone.values()) / (os.cpu_count() or 1)
    bound = max(alone[longest], spread_s) / seq
    limit = (
        f"the longest device alone ({longest}, {alone[longest]:.1f} s)"
        if alone[longest] >= spread_s
        else f"the whole work spread over {os.cpu_count()} cores ({spread_s:.1f} s)"
    )
    print(f"concurrent / sequential wall time: {conc / seq:.2f} (bound about {bound:.2f} here, "
          f"set by {limit}; the target 0.4 needs devices that compute elsewhere)")  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("store", "devices", "all"), default="all")
    part = parser.parse_args().part
    if part in ("store", "all"):
        store_throughput()
    if part in ("devices", "all"):
        devices_at_once()


if __name__ == "__main__":
    main()
