"""``build_report`` and ``mnbench report`` through a real results store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from reports.build import build_report
from results.errors import ResultsError
from results.store import Store
from tests.reports.storedata import make_store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "mnbench.sqlite"
    make_store(path, runs=2, variants=("separable", "standard"))
    return path


def test_build_report_all_runs(db: Path, tmp_path: Path) -> None:
    files = build_report(db, ["all"], None, tmp_path / "out")
    html = files.html.read_text(encoding="utf-8")
    for text in (
        "#1 desktop · ORT 1.31.1 · run1",
        "#2 board · ORT 1.17.0 · run2",
        "desktop test CPU",
        "runner exited with code 1",
        "Pareto-optimal",
    ):
        assert text in html, text
    heatmap = pd.read_csv(files.out_dir / "latency_heatmap.csv")
    assert sorted(set(heatmap["run_id"])) == [1, 2]
    assert len(heatmap) == 2 * 2 * 16  # two runs, two variants, 16 cells
    prediction = pd.read_csv(files.out_dir / "prediction.csv")
    assert len(prediction) == 32  # both runs measured both variants in every cell
    with Store.open(db) as store:
        results = store.results_frame([1])
    one = results[(results["name"] == "mobilenet_v1_0.5_160")]
    assert heatmap[
        (heatmap["run_id"] == 1)
        & (heatmap["alpha"] == 0.5)
        & (heatmap["resolution"] == 160)
        & (heatmap["variant"] == "separable")
    ]["p50_ms"].tolist() == pytest.approx(one["p50_ms"].tolist())
    summary = files.summary.read_text(encoding="utf-8")
    assert "partly failed: 2" in summary  # 1.0/128 in both variants of run 1


def test_latest_is_default_and_ids_dedupe(db: Path, tmp_path: Path) -> None:
    files = build_report(db, [], None, tmp_path / "latest")
    heatmap = pd.read_csv(files.out_dir / "latency_heatmap.csv")
    assert set(heatmap["run_id"]) == {2}
    files = build_report(db, ["1", 1, "run1"], None, tmp_path / "one")
    assert set(pd.read_csv(files.out_dir / "latency_heatmap.csv")["run_id"]) == {1}


def test_user_accuracy_wins(db: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("alpha,resolution,precision,top1\n1.0,224,fp32,75.5\n", encoding="utf-8")
    files = build_report(db, ["2"], mine, tmp_path / "acc")
    data = pd.read_csv(files.out_dir / "latency_accuracy.csv")
    cell = data[(data["alpha"] == 1.0) & (data["resolution"] == 224)]
    assert cell["top1"].tolist() == [75.5]
    assert cell["accuracy_source"].tolist() == [str(mine)]
    assert data[(data["alpha"] == 0.5) & (data["resolution"] == 224)]["top1"].tolist() == [63.3]


def test_cli_writes_and_prints_path(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    assert main(["report", "--db", str(db), "--run", "1", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == str(out / "report.html")
    assert "no chart for Time share" in captured.err
    assert (out / "summary.md").exists() and (out / "latency_vs_macs.svg").exists()


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--accuracy" in text and "--run all" in text


def bad_cases(db: Path, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.sqlite"
    Store.open(empty).close()
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(
        "alpha,resolution,precision,top1\n1.0,224,fp32,70\n0.5,160,fp32\n", encoding="utf-8"
    )
    out = str(tmp_path / "out")
    return {
        "empty store": (["--db", str(empty), "--out", out], "holds no runs"),
        "empty store, all": (["--db", str(empty), "--run", "all", "--out", out], "holds no runs"),
        "unknown run": (["--db", str(db), "--run", "99", "--out", out], "no run 99"),
        "missing db": (
            ["--db", str(tmp_path / "none.sqlite"), "--out", out],
            "no results database",
        ),
        "out under a file": (["--db", str(db), "--out", str(blocker / "sub")], "not a directory"),
        "out is a file": (["--db", str(db), "--out", str(blocker)], "not a directory"),
        "malformed accuracy": (
            ["--db", str(db), "--accuracy", str(bad_csv), "--out", out],
            "line 3: 3 field(s)",
        ),
        "all with others": (
            ["--db", str(db), "--run", "all", "1", "--out", out],
            "cannot be combined",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty store",
        "empty store, all",
        "unknown run",
        "missing db",
        "out under a file",
        "out is a file",
        "malformed accuracy",
        "all with others",
    ],
)
def test_bad_input_exits_2_with_one_line(
    db: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = bad_cases(db, tmp_path)[case]
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnbench: error: ")
    assert expected in lines[0]
    assert not (tmp_path / "out" / "report.html").exists()


def test_build_report_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(ResultsError):
        build_report(tmp_path / "missing.sqlite", ["latest"], None, tmp_path / "out")
