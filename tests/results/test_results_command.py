"""``mnbench results`` through harness.cli.main on a real database file."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from results.store import RESULT_COLUMNS, ModelRecord, Store
from tests.results.test_store import MODEL, new_run, runner_document

FOREIGN = ModelRecord(sha256="9" * 64, name="resnet_foreign")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two runs: run 1 one model, run 2 (latest) two models, one of them partly failed."""
    path = tmp_path / "bench.sqlite"
    rng = np.random.default_rng(5)
    with Store.open(path) as store:
        store.upsert_model(MODEL)
        store.upsert_model(FOREIGN)
        first = new_run(store, label="baseline", runtime="1.30.0")
        store.add_measurement(
            run_id=first,
            model_sha256=MODEL.sha256,
            config={"threads": 1},
            trial=0,
            status="ok",
            reason=None,
            document=runner_document(list(20 + rng.random(50)), version="1.30.0"),
        )
        store.set_run_status(first, "complete")
        second = new_run(store, label="candidate")
        for trial in range(2):
            store.add_measurement(
                run_id=second,
                model_sha256=MODEL.sha256,
                config={"threads": 2, "cpus": [0, 1]},
                trial=trial,
                status="ok",
                reason=None,
                document=runner_document(
                    list(4 + rng.random(40)), peak_rss_end_bytes=(100 + trial) * 2**20
                ),
            )
        store.add_measurement(
            run_id=second,
            model_sha256=FOREIGN.sha256,
            config={"threads": 2, "cpus": [0, 1]},
            trial=0,
            status="ok",
            reason=None,
            document=runner_document([150.0, 151.0, 149.5]),
        )
        store.add_measurement(
            run_id=second,
            model_sha256=FOREIGN.sha256,
            config={"threads": 2, "cpus": [0, 1]},
            trial=1,
            status="failed",
            reason="timeout",
            document=None,
        )
    return path


def test_table_of_latest_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("run 2 | 'candidate' | ")
    assert "local (local)" in lines[0] and "onnxruntime 1.31.1" in lines[0]
    header = lines[1]
    for unit_header in (
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "CI95 low ms",
        "load ms",
        "first ms",
        "peak RSS MiB",
        "MMACs",
    ):
        assert unit_header in header
    rows = lines[3:]
    assert len(rows) == 2
    assert "baseline" not in out
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {"mobilenet_v1_0.75_160", "resnet_foreign"}
    # Right-aligned numeric columns end where their header ends.
    end = header.index("p50 ms") + len("p50 ms")
    for row in rows:
        assert re.fullmatch(r"\d+\.\d+", row[:end].split()[-1])
    assert re.search(r"\b101\.0\b", by_name["mobilenet_v1_0.75_160"])  # peak RSS MiB
    assert re.search(r"\b162\.0\b", by_name["mobilenet_v1_0.75_160"])  # MMACs
    assert "partial" in by_name["resnet_foreign"] and " ok" in by_name["mobilenet_v1_0.75_160"]
    assert "150.0" in by_name["resnet_foreign"]


def test_csv_has_exactly_the_columns(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--db", str(db), "--run", "all", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == RESULT_COLUMNS
    rows = list(reader)
    assert [row["run_id"] for row in rows] == ["1", "2", "2"]
    with Store.open(db) as store:
        frame = store.results_frame()
    for row, (_, expected) in zip(rows, frame.iterrows(), strict=True):
        assert float(row["p50_ms"]) == pytest.approx(expected["p50_ms"])
        assert row["name"] == expected["name"]
    foreign = rows[2]
    assert (foreign["alpha"], foreign["macs"], foreign["status"]) == ("", "", "partial")
    assert foreign["resolution"] == ""  # nullable integers print empty, not "nan"
    assert rows[0]["resolution"] == "160" and rows[0]["threads"] == "1"


def test_json_records(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--db", str(db), "--run", "1", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert isinstance(records, list) and len(records) == 1
    record = records[0]
    assert tuple(record) == RESULT_COLUMNS
    assert (record["run_id"], record["runtime_version"], record["trials"]) == (1, "1.30.0", 1)
    assert record["samples"] == 50 and isinstance(record["samples"], int)
    assert 20.0 < record["p50_ms"] < 21.0
    # One trial: no interval across trials, and the reason; the within-process one is there.
    assert record["ci_low_ms"] is None and record["ci_high_ms"] is None
    assert record["ci_reason"] == "1 trial: an interval needs at least 3"
    assert record["within_ci_low_ms"] <= record["p50_ms"] <= record["within_ci_high_ms"]
    assert record["macs"] == 162_000_000 and record["status"] == "ok"


def test_json_nulls_for_unknown(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--db", str(db), "--format", "json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["resnet_foreign"]["alpha"] is None
    assert records["resnet_foreign"]["macs"] is None


def test_env_var_selects_the_database(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNBENCH_DB", str(db))
    assert main(["results", "--run", "baseline", "--format", "json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [1]


def test_list_runs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--db", str(db), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["run", "created"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]
    assert "complete" in lines[2] and "baseline" in lines[2]
    assert main(["results", "--db", str(db), "--list", "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["measurements"], r["failed_measurements"]) for r in runs] == [
        (1, 1, 0),
        (2, 4, 1),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "7"], r"no run 7 in .*bench\.sqlite; `mnbench results --list` lists the runs"),
        (["--run", "nightly"], r"no run 'nightly'"),
        (["--format", "xml"], r"invalid choice: 'xml'"),
    ],
)
def test_errors_are_one_line_exit_2(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["results", "--db", str(db), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert re.search(message, captured.err)


def test_missing_empty_and_corrupt_databases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sqlite"
    assert main(["results", "--db", str(missing)]) == 2
    assert "no results database at" in capsys.readouterr().err
    assert not missing.exists()

    empty = tmp_path / "empty.sqlite"
    Store.open(empty).close()
    assert main(["results", "--db", str(empty)]) == 2
    assert "holds no runs yet; measure with `mnbench run`" in capsys.readouterr().err
    assert main(["results", "--db", str(empty), "--run", "all"]) == 2
    assert "holds no runs yet" in capsys.readouterr().err

    corrupt = tmp_path / "notes.txt"
    corrupt.write_text("these are not results\n")
    assert main(["results", "--db", str(corrupt)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"mnbench: error: {corrupt} is not an mnbench database (not an SQLite file); "
        "pass another --db or move it away"
    )
    assert corrupt.read_text() == "these are not results\n"


def test_run_without_measurements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fresh.sqlite"
    with Store.open(path) as store:
        new_run(store)
    assert main(["results", "--db", str(path)]) == 0
    assert "(no measurements yet)" in capsys.readouterr().out
    assert main(["results", "--db", str(path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(RESULT_COLUMNS)


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["results", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "mnbench results --run all --format csv" in out
