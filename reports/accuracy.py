"""ImageNet top-1 accuracy per MobileNetV1 cell: the bundled reference table and the user's own.

The bundled table ``reports/data/reference_accuracy.csv`` copies the TF-Slim numbers
(tensorflow/models ``research/slim/nets/mobilenet_v1.md`` @ 10cf1c0a, checkpoints
``mobilenet_v1_2018_08_02``): the float checkpoints as ``fp32`` and the ``_quant`` TensorFlow
Lite models as ``int8``, all 16 cells of α ∈ {1.0, 0.75, 0.5, 0.25} × resolution ∈ {224, 192,
160, 128} each. Accuracy is in percent. Only the depthwise-separable MobileNet has published
numbers per cell; the standard-convolution variant gets none.

A user CSV (``--accuracy``) has the columns ``alpha,resolution,precision,top1`` (``top5`` and
``source`` optional, lines starting with ``#`` are comments); its rows win over the reference
rows for the same (alpha, resolution, precision). A malformed file is a one-line ``ReportError``
naming the line and what is wrong.
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path
from typing import cast

import pandas as pd

from mobilenet.files import UnreadableFile, read_bounded
from reports.errors import ReportError

ACCURACY_LIMIT_BYTES = 16 << 20
"""The largest accuracy CSV read (the whole grid is a few kilobytes)."""

PRECISIONS: tuple[str, ...] = ("fp32", "int8", "fp16")
REQUIRED_COLUMNS: tuple[str, ...] = ("alpha", "resolution", "precision", "top1")
COLUMNS: tuple[str, ...] = ("alpha", "resolution", "precision", "top1", "top5", "source")
ALPHA_DECIMALS = 4
"""Alphas are matched after rounding to this many decimals (0.5 == 0.50 == 0.5000)."""


def alpha_key(alpha: float) -> float:
    """The value alphas are joined on, so 0.5 from a CSV meets 0.5 from a model name."""
    return round(float(alpha), ALPHA_DECIMALS)


def _parse_rows(text: str, origin: str) -> pd.DataFrame:
    """Parse and validate accuracy CSV text; errors name ``origin`` and the line number."""
    lines = text.splitlines()
    reader = csv.reader(lines)
    header: list[str] | None = None
    records: list[dict[str, object]] = []
    seen: dict[tuple[float, int, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in row]
        if header is None:
            header = [cell.lower() for cell in cells]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise ReportError(
                    f"{origin} line {line}: header lacks column(s) {', '.join(missing)}; "
                    f"the first row must name the columns {','.join(REQUIRED_COLUMNS)}"
                )
            continue
        if len(cells) != len(header):
            raise ReportError(
                f"{origin} line {line}: {len(cells)} field(s) where the header has "
                f"{len(header)} ({','.join(header)}); fix or remove that row"
            )
        values = dict(zip(header, cells, strict=True))
        for name in REQUIRED_COLUMNS:
            if values[name] == "":
                raise ReportError(
                    f"{origin} line {line}: {name} is empty; give a value or remove that row"
                )
        alpha = _number(values["alpha"], "alpha", origin, line)
        if not alpha > 0:
            raise ReportError(f"{origin} line {line}: alpha {values['alpha']} must be > 0")
        resolution_f = _number(values["resolution"], "resolution", origin, line)
        if resolution_f != int(resolution_f) or resolution_f < 32:
            raise ReportError(
                f"{origin} line {line}: resolution {values['resolution']} must be "
                "an integer >= 32 (pixels, e.g. 224)"
            )
        precision = values["precision"].lower()
        if precision not in PRECISIONS:
            raise ReportError(
                f"{origin} line {line}: precision {values['precision']!r} is not one "
                f"of {', '.join(PRECISIONS)}"
            )
        top1 = _number(values["top1"], "top1", origin, line)
        if not 0 < top1 <= 100:
            raise ReportError(
                f"{origin} line {line}: top1 {values['top1']} is outside (0, 100]; "
                "give the accuracy in percent, e.g. 70.9"
            )
        top5 = math.nan
        if values.get("top5", ""):
            top5 = _number(values["top5"], "top5", origin, line)
            if not 0 < top5 <= 100:
                raise ReportError(
                    f"{origin} line {line}: top5 {values['top5']} is outside "
                    "(0, 100]; give the accuracy in percent"
                )
        key = (alpha_key(alpha), int(resolution_f), precision)
        if key in seen:
            raise ReportError(
                f"{origin} line {line}: alpha {alpha:g}, resolution "
                f"{int(resolution_f)}, {precision} repeats line {seen[key]}; keep one"
            )
        seen[key] = line
        records.append(
            {
                "alpha": key[0],
                "resolution": key[1],
                "precision": precision,
                "top1": top1,
                "top5": top5,
                "source": values.get("source", "") or origin,
            }
        )
    if header is None:
        raise ReportError(
            f"{origin}: no header row; the first row must name the columns "
            f"{','.join(REQUIRED_COLUMNS)}"
        )
    if not records:
        raise ReportError(
            f"{origin}: no data rows after the header; add rows "
            f"{','.join(REQUIRED_COLUMNS)} or leave out --accuracy"
        )
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    if all(float(v) <= 1.0 for v in frame["top1"]):
        raise ReportError(
            f"{origin}: every top1 is <= 1, which looks like a fraction; give "
            "accuracy in percent (e.g. 70.9)"
        )
    return cast(pd.DataFrame, frame)


def _number(text: str, column: str, origin: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReportError(f"{origin} line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ReportError(f"{origin} line {line}: {column} {text!r} is not a finite number")
    return value


def reference_accuracy() -> pd.DataFrame:
    """The bundled TF-Slim table: columns alpha, resolution, precision, top1, top5, source."""
    text = resources.files("reports").joinpath("data/reference_accuracy.csv").read_text("utf-8")
    return _parse_rows(text, "reports/data/reference_accuracy.csv")


def read_accuracy_csv(path: Path) -> pd.DataFrame:
    """A user's accuracy CSV, validated; a missing or malformed file is a ``ReportError``."""
    try:
        text = read_bounded(path, flag="--accuracy", limit=ACCURACY_LIMIT_BYTES).decode("utf-8")
    except UnreadableFile as exc:
        raise ReportError(exc.message) from None
    except FileNotFoundError:
        raise ReportError(
            f"accuracy file {path} does not exist; give an existing CSV to --accuracy"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(
            f"cannot read accuracy file {path}: {exc}; give a readable UTF-8 CSV"
        ) from None
    return _parse_rows(text, str(path))


def accuracy_table(user_csv: Path | None = None) -> pd.DataFrame:
    """The reference table, overridden row by row by the user's CSV where both exist."""
    reference = reference_accuracy()
    if user_csv is None:
        return reference
    user = read_accuracy_csv(user_csv)
    keys = ["alpha", "resolution", "precision"]
    user_keys = set(user[keys].itertuples(index=False, name=None))
    keep = [key not in user_keys for key in reference[keys].itertuples(index=False, name=None)]
    merged = pd.concat([user, reference[keep]], ignore_index=True)
    ordered = merged.sort_values(
        ["precision", "alpha", "resolution"], ascending=[True, False, False]
    )
    return cast(pd.DataFrame, ordered.reset_index(drop=True))
