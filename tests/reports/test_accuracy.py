"""The bundled TF-Slim accuracy table and the user's ``--accuracy`` CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import exit_code_of
from reports.accuracy import accuracy_table, read_accuracy_csv, reference_accuracy
from reports.errors import ReportError

# A few cells copied from tensorflow/models research/slim/nets/mobilenet_v1.md @ 10cf1c0a
# (float and _quant rows of the mobilenet_v1_2018_08_02 checkpoints).
SPOT_CHECKS = [
    (1.0, 224, "fp32", 70.9, 89.9),
    (0.75, 192, "fp32", 67.2, 87.3),
    (0.5, 160, "fp32", 59.1, 81.9),
    (0.25, 128, "fp32", 41.5, 66.3),
    (1.0, 224, "int8", 70.1, 88.9),
    (0.75, 128, "int8", 55.8, 78.8),
    (0.5, 192, "int8", 60.0, 82.2),
    (0.25, 160, "int8", 43.4, 68.5),
]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_reference_has_all_16_cells(precision: str) -> None:
    table = reference_accuracy()
    rows = table[table["precision"] == precision]
    cells = set(zip(rows["alpha"], rows["resolution"], strict=True))
    assert cells == {(a, r) for a in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)}
    assert len(rows) == 16
    assert all("10cf1c0a" in source for source in rows["source"])
    # accuracy falls with resolution within each alpha in the float table
    if precision == "fp32":
        for alpha in (1.0, 0.75, 0.5, 0.25):
            top1 = rows[rows["alpha"] == alpha].sort_values("resolution")["top1"].tolist()
            assert top1 == sorted(top1)


@pytest.mark.parametrize(("alpha", "resolution", "precision", "top1", "top5"), SPOT_CHECKS)
def test_reference_values(
    alpha: float, resolution: int, precision: str, top1: float, top5: float
) -> None:
    table = reference_accuracy()
    row = table[
        (table["alpha"] == alpha)
        & (table["resolution"] == resolution)
        & (table["precision"] == precision)
    ]
    assert row["top1"].tolist() == [top1]
    assert row["top5"].tolist() == [top5]


def test_user_rows_win_over_reference(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "# my eval\nalpha,resolution,precision,top1\n0.50,160,fp32,61.25\n1.0,96,fp32,55.5\n",
        encoding="utf-8",
    )
    table = accuracy_table(path)
    mine = table[
        (table["alpha"] == 0.5) & (table["resolution"] == 160) & (table["precision"] == "fp32")
    ]
    assert mine["top1"].tolist() == [61.25]
    assert mine["source"].tolist() == [str(path)]
    assert len(table) == 33  # 32 reference rows, one replaced, one new cell


BAD_FILES = [
    ("alpha,resolution,top1\n1.0,224,70\n", "line 1", "precision"),
    (
        "alpha,resolution,precision,top1\n1.0,224,fp32,70.9\n0.75,224,fp32,abc\n",
        "line 3",
        "not a number",
    ),
    ("alpha,resolution,precision,top1\n1.0,224,fp32,70.9\n0.75,224,fp32\n", "line 3", "3 field(s)"),
    (
        "alpha,resolution,precision,top1\n1.0,224,fp32,70.9\n1.0,224,fp32,71\n",
        "line 3",
        "repeats line 2",
    ),
    ("alpha,resolution,precision,top1\n1.0,224,bf16,70.9\n", "line 2", "precision"),
    ("alpha,resolution,precision,top1\n1.0,224,fp32,170\n", "line 2", "percent"),
    ("alpha,resolution,precision,top1\n1.0,22.5,fp32,70\n", "line 2", "resolution"),
    ("alpha,resolution,precision,top1\n1.0,224,fp32,\n", "line 2", "top1 is empty"),
    ("alpha,resolution,precision,top1\n", "no data rows", "--accuracy"),
    ("", "no header", "alpha,resolution,precision,top1"),
    ("alpha,resolution,precision,top1\n1.0,224,fp32,0.709\n", "fraction", "percent"),
]


@pytest.mark.parametrize(("text", "where", "what"), BAD_FILES)
def test_malformed_user_csv_is_one_line_error(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        read_accuracy_csv(path)
    message = caught.value.message
    assert "\n" not in message
    assert str(path) in message
    assert where in message
    assert what in message
    assert exit_code_of(caught.value) == 2


def test_missing_user_csv(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        accuracy_table(tmp_path / "nope.csv")
