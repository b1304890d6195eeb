"""``mnbench regress`` in the pairs design, end to end with real runner processes: a real
2x slowdown caught, A/A not flagged, the interleaving order stored and re-analysed by
``mnbench compare``, two real onnxruntime releases, the emulated arm64 board over SSH and
the simulated phone over adb; and ``compare`` of runs whose configurations differ."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.measure.runtimes import ensure_runtime
from harness.measure.slowdown import make_slow_python
from results.store import Store
from tests.fixtures.adb import AdbPhone
from tests.fixtures.build_arm64_sysroot import Arm64Sysroot
from tests.fixtures.sshd import SshServer
from tests.harness.test_regress import NEWEST, OLDEST
from tests.harness.test_remote_runs import board_inventory

SMALL = ["--alpha", "0.25", "--resolution", "96", "--threads", "1", "--quiet"]
QUICK = ["--bursts", "4", "--burst-ms", "20", "--max-pairs", "4", "--budget", "120"]


def regress(tmp_path: Path, baseline: str, candidate: str, *extra: str) -> list[str]:
    return [
        "regress",
        "--baseline",
        baseline,
        "--candidate",
        candidate,
        "--db",
        str(tmp_path / "db.sqlite"),
        "--models-dir",
        str(tmp_path / "models"),
        "--format",
        "json",
        *SMALL,
        *extra,
    ]


def test_real_2x_slowdown_is_slower_and_compare_replays_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = make_slow_python(tmp_path, 1.0)
    rc = main(regress(tmp_path, "current", str(slow), *QUICK, "--seed", "4"))
    doc = json.loads(capsys.readouterr().out)
    (cell,) = doc["cells"]
    assert (cell["verdict"], rc) == ("slower", 1)
    assert cell["design"] == "pairs" and cell["ratio"] > 1.5
    assert cell["within_sd"] is not None and cell["between_sd"] is not None
    db = str(tmp_path / "db.sqlite")
    chart = tmp_path / "chart"
    assert main(["compare", "1", "2", "--db", db, "--format", "json", "--chart", str(chart)]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["cells"] == doc["cells"]  # re-analysed from the stored bursts
    assert (chart / "regression.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "slower" in (chart / "regression.csv").read_text()
    # the same bursts at a 300 % threshold: a 2x slowdown is within it
    assert main(["compare", "1", "2", "--db", db, "--format", "json", "--threshold", "300"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0]["verdict"] == "unchanged"


def test_aa_is_not_flagged_and_the_interleaving_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(regress(tmp_path, "current", "current", *QUICK, "--seed", "11"))
    doc = json.loads(capsys.readouterr().out)
    (cell,) = doc["cells"]
    assert cell["verdict"] in ("unchanged", "inconclusive") and rc in (0, 3)
    with Store.open(tmp_path / "db.sqlite") as store:
        a, b = store.list_runs()
        bursts = store.bursts(a.id) + store.bursts(b.id)
        frame = store.measurements_frame()
    assert a.config["pairing"] == b.config["pairing"] and a.config["design"] == "pairs"
    pairs = sorted({row["pair"] for row in bursts})
    assert pairs == list(range(1, cell["baseline_trials"] + 1))
    for pair in pairs:
        rows = sorted((r for r in bursts if r["pair"] == pair), key=lambda r: r["position"])
        sides = [r["side"] for r in rows]
        assert [r["position"] for r in rows] == list(range(8))
        assert all(x != y for x, y in itertools.pairwise(sides))  # alternating
        assert all(r["run_id"] == (a.id if r["side"] == "A" else b.id) for r in rows)
        starts = [r["start_unix"] for r in rows]
        assert starts == sorted(starts)  # stored in the order they were measured
        assert len({len(r["samples_ms"]) for r in rows}) == 1  # one burst size per cell
        docs = frame[frame["trial"] == pair]
        assert len(docs) == 2 and (docs["status"] == "ok").all()


def test_two_releases_in_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_runtime(OLDEST), ensure_runtime(NEWEST)  # cached across test sessions
    rc = main(regress(tmp_path, OLDEST, NEWEST, "--bursts", "3", "--max-pairs", "3"))
    doc = json.loads(capsys.readouterr().out)
    assert rc in (0, 1, 3) and len(doc["cells"]) == 1 and not doc["failed"]
    with Store.open(tmp_path / "db.sqlite") as store:
        versions = [r.runtime_version for r in store.list_runs()]
    assert versions == ["1.15.1", "1.31.1"]


@pytest.mark.slow
def test_pairs_on_the_emulated_arm_board_over_ssh(
    tmp_path: Path,
    sshd_server: SshServer,
    arm64_board: Arm64Sysroot,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inventory = board_inventory(tmp_path, sshd_server, arm64_board.python_command)
    argv = regress(
        tmp_path,
        "current",
        "current",
        "--device",
        "board",
        "--inventory",
        str(inventory),
        "--bursts",
        "2",
        "--burst-ms",
        "20",
        "--max-pairs",
        "2",
    )
    rc = main(argv)
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert rc in (0, 3), captured.err
    (cell,) = doc["cells"]
    assert cell["design"] == "pairs" and cell["baseline_trials"] == 2
    with Store.open(tmp_path / "db.sqlite") as store:
        run = store.list_runs()[0]
        bursts = store.bursts(run.id)
        frame = store.measurements_frame()
    assert run.device_kind == "ssh" and len(bursts) == 2 * 2  # its side of 2 pairs
    assert (frame["status"] == "ok").all()


def test_pairs_on_the_simulated_phone_over_adb(
    tmp_path: Path, adb_phone: AdbPhone, capsys: pytest.CaptureFixture[str]
) -> None:
    server = adb_phone.server
    url = (
        f"adb://{adb_phone.serial}?adb={server.adb}&server=127.0.0.1:{server.port}"
        f"&python={sys.executable}"
    )
    slow = make_slow_python(tmp_path, 1.0)
    rc = main(regress(tmp_path, "current", str(slow), "--device", url, *QUICK, "--seed", "2"))
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert (doc["cells"][0]["verdict"], rc) == ("slower", 1), captured.err
    with Store.open(tmp_path / "db.sqlite") as store:
        runs = store.list_runs()
        assert all(r.device_kind == "adb" for r in runs)
        assert store.bursts(runs[1].id)


def test_compare_pairs_cells_by_model_when_configurations_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "db.sqlite")
    for threads in ("2", "1"):
        argv = ["run", "--alpha", "0.25", "--resolution", "96", "--threads", threads]
        argv += ["--trials", "2", "--min-time", "0.05", "--max-time", "0.2", "--quiet"]
        assert main([*argv, "--db", db, "--models-dir", str(tmp_path / "models")]) == 0
    capsys.readouterr()
    assert main(["compare", "1", "2", "--db", db, "--format", "json"]) in (0, 1, 3)
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["cells"]) == 1 and doc["cells"][0]["name"] == "mobilenet_v1_0.25_96"
    assert any("paired by model" in w for w in doc["warnings"])


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--max-pairs", "1"], "--max-pairs must be at least 2"),
        (["--budget", "-1"], "--budget must be a positive number"),
        (["--budget", "nan"], "--budget must be a positive number"),
        (["--bursts", "1"], "--bursts must be at least 2"),
        (["--burst-ms", "0"], "--burst-ms must be between 1 and 10000"),
        (["--burst-ms", "inf"], "--burst-ms must be between 1 and 10000"),
    ],
)
def test_bad_pair_flags_exit_2_before_anything_runs(
    tmp_path: Path, flags: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(regress(tmp_path, "current", "current", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "db.sqlite").exists()
