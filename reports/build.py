"""Build the report: read the store, draw the charts, write the files atomically.

``render_report`` is a pure function of (runs frame, results frame, accuracy table) to files;
``build_report`` opens the store read-only in spirit (it never writes measurements), picks the
runs and calls it. Every file is written to a temporary name beside its target and moved
into place with ``os.replace`` (pypa/build's habit), so a reader never sees half a report.

Files in the output directory: ``report.html`` (self-contained), ``summary.md``, and per
chart ``<name>.png`` (``<name>.svg`` where vectors help) with ``<name>.csv`` holding its data,
and ``.mnbench-report.json``, the manifest of those names and their content hashes: a later
report replaces or removes only files it proves it wrote (``reports.outputs``), never the
database it reads, and a non-empty directory without one is refused (it holds someone
else's files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from mobilenet import __version__, files
from mobilenet.layers import PROBE_VARIANT_PREFIX, layer_table
from mobilenet.validate import creatable_dir
from reports.accuracy import accuracy_table
from reports.answers import Answers, report_answers
from reports.charts import (
    Chart,
    latency_accuracy,
    latency_heatmap,
    latency_vs_macs,
    layer_ratio_chart,
    memory_chart,
    predicted_vs_measured_chart,
    prediction_chart,
    ratio_vs_channels_chart,
    roofline_chart,
    series_labels,
    time_share_chart,
)
from reports.errors import ReportError
from reports.html import render_html
from reports.mission import mission_chart
from reports.outputs import Owned, digest, may_remove, may_replace, read_owned, write_manifest
from reports.summary import render_summary
from results.backend import is_server_url
from results.connection import default_db_path
from results.store import Store

CHART_NAMES: tuple[str, ...] = (
    "mission",
    "latency_heatmap",
    "latency_vs_macs",
    "latency_accuracy",
    "memory",
    "prediction",
    "time_share",
    "layer_ratio",
    "ratio_vs_channels",
    "roofline",
)
"""The charts every report has (with an image, or the reason it has none); a report whose
runs include a ``mnbench predict --validate`` run adds ``predicted_vs_measured``."""
PredictionFrames = Callable[[Store, list[int], pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]
"""The latency model's frames of a report, from its store, run ids and layer table: per block
the predicted cost ratios, and predicted against measured whole-model latency. The caller
gives the function (the latency model lives above the reports); without one the report has
neither."""
MANIFEST_NAME = ".mnbench-report.json"
"""Lists the files a report wrote into its directory: the only ones a later report replaces
or removes."""
REFERENCE_NOTE = (
    "TF-Slim reference top-1 (tensorflow/models research/slim/nets/"
    "mobilenet_v1.md @ 10cf1c0a, checkpoints mobilenet_v1_2018_08_02: float "
    "checkpoints as fp32, _quant TensorFlow Lite models as int8)"
)


@dataclass(frozen=True)
class ReportFiles:
    """What a report build wrote."""

    out_dir: Path
    html: Path
    summary: Path
    images: tuple[Path, ...]
    data: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]
    """(chart title, why it has no data) for each chart left out."""
    answers: Answers
    """The findings the report leads with (``Answers.headline`` for a terminal)."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace."""
    files.write_atomic(path, data, suffix=".tmp")


REPORT_FILES = re.compile(r"(report\.html|summary\.md|[a-z0-9_]+\.(png|svg|csv))")
"""The names a report writes: the only names its manifest can give it."""


def check_out_dir(out_dir: Path, protected: Sequence[Path] = ()) -> Owned:
    """Refuse an output directory this report would have to clobber; what it owns there.

    A report replaces or removes only files its directory's manifest proves it wrote
    (``reports.outputs``), never ``protected`` (the database read); a non-empty directory
    without a manifest holds someone else's files and is refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(
            f"output path {out_dir} exists and is not a directory; give --out a directory"
        )
    creatable_dir(out_dir, "--out")
    owned = read_owned(out_dir, MANIFEST_NAME, REPORT_FILES, flag="--out", protected=protected)
    if owned is None:
        raise ReportError(
            f"{out_dir} already holds files and no earlier mnbench report; "
            "give --out an empty or new directory"
        )
    return owned


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output directory; a path that cannot hold files is a ``ReportError``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReportError(
            f"output path {out_dir} exists and is not a directory; give --out a directory"
        ) from None
    except NotADirectoryError:
        raise ReportError(
            f"cannot create {out_dir}: part of the path is a file, not a "
            "directory; give --out another directory"
        ) from None
    except OSError as exc:
        raise ReportError(
            f"cannot create output directory {out_dir} ({exc.strerror}); give "
            "--out a writable directory"
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ReportError(
            f"output directory {out_dir} is not writable; give --out a writable directory"
        )
    return out_dir


def draw_charts(
    runs: pd.DataFrame,
    results: pd.DataFrame,
    accuracy: pd.DataFrame,
    *,
    accuracy_note: str = REFERENCE_NOTE,
    profiles: pd.DataFrame | None = None,
    layers: pd.DataFrame | None = None,
    model_ratios: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
) -> list[Chart]:
    """All charts of the report, in report order (charts without data included): the
    mission chart first.

    The layer-probe charts are part of the report when ``layers`` is given (an empty frame
    gives them as charts without data); ``build_report`` always gives it."""
    labels = series_labels(runs)
    charts = [
        mission_chart(results, layers),
        latency_heatmap(results, labels),
        latency_vs_macs(results, labels),
        latency_accuracy(results, labels, accuracy, accuracy_note),
        memory_chart(results, labels),
        prediction_chart(results, labels),
        time_share_chart(profiles, labels),
    ]
    if layers is not None:
        charts += [
            layer_ratio_chart(layers, labels, model_ratios),
            ratio_vs_channels_chart(layers, labels, model_ratios),
            roofline_chart(layers, labels),
        ]
    if validation is not None and not validation.empty:
        charts.append(predicted_vs_measured_chart(validation))
    return charts


def render_report(
    runs: pd.DataFrame,
    results: pd.DataFrame,
    accuracy: pd.DataFrame,
    out_dir: Path,
    *,
    accuracy_note: str = REFERENCE_NOTE,
    measurements: pd.DataFrame | None = None,
    profiles: pd.DataFrame | None = None,
    layers: pd.DataFrame | None = None,
    model_ratios: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    generated_at: datetime | None = None,
    trust_results: pd.DataFrame | None = None,
    protected: Sequence[Path] = (),
) -> ReportFiles:
    """Write the report for these frames into ``out_dir`` (created if needed).
    ``trust_results`` (default ``results``) are the results whose flags and guards the
    trust section shows: with the layer probes, which the charts and tables leave out;
    ``protected`` files are never replaced or removed (the database read)."""
    out_dir = Path(out_dir)
    owned = check_out_dir(out_dir, protected)
    charts = draw_charts(
        runs,
        results,
        accuracy,
        accuracy_note=accuracy_note,
        profiles=profiles,
        layers=layers,
        model_ratios=model_ratios,
        validation=validation,
    )
    answers = report_answers(results, charts)
    contents: dict[str, bytes | None] = {}
    for chart in charts:
        contents[f"{chart.name}.png"] = chart.png
        contents[f"{chart.name}.svg"] = chart.svg
        contents[f"{chart.name}.csv"] = (
            chart.data.to_csv(index=False).encode("utf-8") if chart.has_image else None
        )
    contents["report.html"] = render_html(
        runs,
        results,
        charts,
        harness_version=__version__,
        accuracy_note=accuracy_note,
        measurements=measurements,
        generated_at=generated_at,
        answers=answers,
        trust_results=trust_results,
    ).encode("utf-8")
    contents["summary.md"] = render_summary(
        runs,
        results,
        charts,
        harness_version=__version__,
        answers=answers,
        trust_results=trust_results,
    ).encode("utf-8")
    written = {name: content for name, content in contents.items() if content is not None}
    foreign = sorted(n for n, c in written.items() if not may_replace(out_dir, owned, n, c))
    if foreign:
        raise ReportError(
            f"{out_dir / foreign[0]} was not written by an mnbench report and would be "
            "replaced; move it away or give --out another directory"
        )
    out_dir = prepare_out_dir(out_dir)
    images: list[Path] = []
    data: list[Path] = []
    hashes = {name: digest(content) for name, content in written.items()}
    try:  # a crash leaves every file owned, with the content it had or has now
        interim = {n: {*owned.hashes.get(n, ()), *([hashes[n]] if n in hashes else [])}
                   for n in {*owned.hashes, *hashes}}  # fmt: skip
        write_manifest(out_dir, MANIFEST_NAME, interim)
        for file_name, content in contents.items():
            path = out_dir / file_name
            if content is None:
                continue
            write_atomic(path, content)
            if file_name.endswith(".csv"):
                data.append(path)
            elif file_name not in ("report.html", "summary.md"):
                images.append(path)
        for stale in sorted(owned.names - set(written)):  # earlier reports' files, unchanged
            if may_remove(out_dir, owned, stale):
                (out_dir / stale).unlink(missing_ok=True)
        write_manifest(out_dir, MANIFEST_NAME, {n: [h] for n, h in hashes.items()})
    except OSError as exc:
        raise ReportError(
            f"cannot write the report into {out_dir} ({exc.strerror or exc}); give "
            "--out a writable directory"
        ) from None
    html_path = out_dir / "report.html"
    summary_path = out_dir / "summary.md"
    return ReportFiles(
        out_dir=out_dir,
        html=html_path,
        summary=summary_path,
        images=tuple(images),
        data=tuple(data),
        skipped=tuple((c.title, c.missing) for c in charts if not c.has_image),
        answers=answers,
    )


def _run_ids(store: Store, run_specs: Sequence[str | int]) -> list[int]:
    specs = list(run_specs) or ["latest"]
    if any(str(spec).strip().lower() == "all" for spec in specs):
        if len(specs) > 1:
            raise ReportError("--run all cannot be combined with other runs; give 'all' alone")
        ids = [run.id for run in store.list_runs()]
        if not ids:
            raise ReportError(f"{store.path} holds no runs yet; measure with `mnbench run`")
        return ids
    ids = []
    for spec in specs:
        run_id = store.resolve_run_id(spec)
        if run_id not in ids:
            ids.append(run_id)
    return ids


def build_report(
    db_path: Path | str | None,
    run_specs: Sequence[str | int],
    accuracy_csv: Path | str | None,
    out_dir: Path | str,
    *,
    campaign: str | None = None,
    predictions: PredictionFrames | None = None,
) -> ReportFiles:
    """Report on the given runs ("latest", ids, labels or "all") of the database at
    ``db_path`` (None: the default database) into ``out_dir``; with ``campaign``, on that
    lab campaign's runs instead (one per device, side by side as any runs are); with
    ``predictions``, the latency model's frames it computes join the layer and validation
    charts."""
    location = db_path if db_path is not None else default_db_path()
    protected = [] if is_server_url(location) else [Path(location)]
    check_out_dir(Path(out_dir), protected)  # before any work: refuse someone else's directory
    accuracy = accuracy_table(Path(accuracy_csv) if accuracy_csv is not None else None)
    note = (
        REFERENCE_NOTE
        if accuracy_csv is None
        else (f"{accuracy_csv} where it gives a cell, else the {REFERENCE_NOTE}")
    )
    with Store.open(db_path, readonly=True) as store:
        run_ids = (
            _run_ids(store, run_specs) if campaign is None else store.campaign_run_ids(campaign)
        )
        runs = store.runs_frame()
        runs = runs[runs["run_id"].isin(run_ids)].reset_index(drop=True)
        results = store.results_frame(run_ids)  # carries the failure reasons per result
        profiles = store.profiles_frame(run_ids)
        layers = layer_table(store.probes_frame(run_ids, results))
        model_ratios: pd.DataFrame | None = None
        validation: pd.DataFrame | None = None
        if predictions is not None:
            model_ratios, validation = predictions(store, run_ids, layers)
    measured = results  # the trust section judges the layer probes' trials too
    variants = results["variant"].astype(object).fillna("").astype(str)
    results = results[~variants.str.startswith(PROBE_VARIANT_PREFIX)].reset_index(drop=True)
    return render_report(
        runs,
        results,
        accuracy,
        Path(out_dir),
        accuracy_note=note,
        profiles=profiles,
        layers=layers,
        model_ratios=model_ratios,
        validation=validation,
        trust_results=measured,
        protected=protected,
    )
