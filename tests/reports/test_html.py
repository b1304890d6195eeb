"""The HTML report: self-contained, every chart or its reason, opened in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.cli import main
from reports.accuracy import reference_accuracy
from reports.build import CHART_NAMES, ReportFiles, build_report, render_report
from reports.html import flatten_facts
from tests.reports.frames import grid_rows, results_frame, run_row, runs_frame, two_device_frames
from tests.tooling import require_tool

PROBE = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  const imgs = Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight]);
  const res = performance.getEntriesByType('resource').map(e => e.name);
  out.textContent = 'PROBE_' + 'BEGIN' + JSON.stringify({imgs: imgs, res: res})
    + 'PROBE_' + 'FINISH';
  document.body.appendChild(out);
});
</script></body>"""


def build(tmp_path: Path) -> ReportFiles:
    runs, results = two_device_frames()
    return render_report(runs, results, reference_accuracy(), tmp_path / "report")


def references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, flags=re.IGNORECASE)


def test_self_contained(tmp_path: Path) -> None:
    html = build(tmp_path).html.read_text(encoding="utf-8")
    refs = references(html)
    assert refs, "the report has images and anchors"
    for ref in refs:
        assert ref.startswith(("data:", "#")), ref
    assert "<script" not in html.lower()
    assert "<link" not in html.lower() and "@import" not in html and "url(" not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 6  # mission, heatmap, vs MACs, accuracy, memory, prediction
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "PNG" and image.width > 0


def test_content(tmp_path: Path) -> None:
    files = build(tmp_path)
    html = files.html.read_text(encoding="utf-8")
    for text in (
        "Cortex-A72",
        "ondemand",
        "desktop CPU",
        "1.31.1",
        "1.17.0",
        "report by mnbench 0.1.0",
        "mobilenet_v1_1.0_128",
        "high_cv (samples within one process",
        "Pareto-optimal",
        "slope",
        "Failed or unstable measurements",
        'id="trust"',
    ):
        assert text in html, text
    # the chart without data says why and what to run, with no image
    section = html.split('id="time_share"')[1].split("<h2")[0]
    assert "no per-layer profiles" in section and "mnbench run --profile" in section
    assert "<img" not in section
    names = sorted(p.name for p in files.images + files.data)
    assert "latency_heatmap.png" in names and "latency_accuracy.svg" in names
    assert "time_share.png" not in names and "prediction.csv" in names
    assert files.skipped == (
        ("Time share vs MAC share by layer kind", "the selected runs hold no per-layer profiles"),
    )
    summary = files.summary.read_text(encoding="utf-8")
    assert (
        "| 0.25/128 |" in summary
        and "failed: 1; partly failed: 1; unreliable (flagged): 2" in summary
    )
    assert not list(files.out_dir.glob("*.tmp"))


def test_missing_data_report(tmp_path: Path) -> None:
    """Standard-variant fp16 only, no memory figures: each skipped chart says why."""
    rows = grid_rows(1, "box", "1.31.1", variants=("standard",), precisions=("fp16",))
    for row in rows:
        for key in (
            "peak_rss_bytes",
            "peak_rss_load_bytes",
            "weight_bytes",
            "peak_activation_bytes",
            "file_bytes",
        ):
            row[key] = None
    runs = runs_frame([run_row(1, "box", "1.31.1", facts={})])
    files = render_report(runs, results_frame(rows), reference_accuracy(), tmp_path / "r")
    html = files.html.read_text(encoding="utf-8")
    for reason, command in (
        ("the standard variant has no published accuracy", "mnbench run --variant separable"),
        ("peak RSS or model sizes", "mnbench run"),
        (
            "measured in both the separable and the standard variant",
            "mnbench run --variant separable standard",
        ),
        ("no per-layer profiles", "mnbench run --profile"),
    ):
        assert reason in html and f"<code>{command}</code>" in html
    assert html.count("<img") == 2  # heatmap and latency vs MACs only
    assert "No device facts were recorded" in html
    assert "Every measurement completed" in html


def test_device_facts_are_defensive() -> None:
    assert flatten_facts(None) == []
    assert flatten_facts(float("nan")) == []
    assert flatten_facts("not a dict") == [("facts", "not a dict")]
    rows = dict(
        flatten_facts(
            {
                "os": "Linux",
                "cpu_model": "A76",
                "getprop": {"ro.a": "1", "ro.b": "2"},
                "cpus": [{"cpu": 0, "max_khz": 2_400_000}, {"cpu": 1, "max_khz": 1_800_000}],
                "mem_total_bytes": 8 * 2**30,
                "thermal": {"cpu": 45.5},
                "loadavg": None,
            }
        )
    )
    assert rows["cpus[].max_khz"] == "2400 MHz, 1800 MHz"
    assert rows["mem_total_bytes"] == "8.0 GiB"
    assert rows["thermal.cpu"] == "45.5"
    assert rows["getprop"].startswith("2 entries")
    assert next(iter(rows)) == "cpu_model"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("chromium", "the HTML report is checked in a real browser")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


class _Recorder(SimpleHTTPRequestHandler):
    """Serves the test directory and records every path the browser asks for."""

    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requested.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(base URL serving tmp_path on 127.0.0.1, the list of requested paths)."""
    requested: list[str] = []
    handler: type[_Recorder] = type("Handler", (_Recorder,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def probe(tmp_path: Path, base_url: str, html: str, name: str) -> list[list[int]]:
    """Natural sizes of the page's images, from a copy with a probe script, over HTTP."""
    (tmp_path / name).write_text(html.replace("</body>", PROBE), encoding="utf-8")
    done = chromium(tmp_path, "--dump-dom", f"{base_url}/{name}")
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"PROBE_BEGIN(.*?)PROBE_FINISH", done.stdout.replace("&quot;", '"'))
    assert found is not None, done.stdout[-2000:]
    sizes: list[list[int]] = json.loads(found.group(1))["imgs"]
    return sizes


def page_requests(requested: list[str]) -> list[str]:
    """What the pages asked for (the browser's own favicon request left out)."""
    return [path for path in requested if path != "/favicon.ico"]


def test_report_in_chromium(tmp_path: Path, http_dir: tuple[str, list[str]]) -> None:
    base_url, requested = http_dir
    files = build(tmp_path)
    html = files.html.read_text(encoding="utf-8")
    sizes = probe(tmp_path, base_url, html, "probe.html")
    assert len(sizes) == 6
    assert all(width > 0 and height > 0 for width, height in sizes)
    assert page_requests(requested) == ["/probe.html"]  # nothing else fetched
    # the same probe tells a broken image and an extra fetch apart
    requested.clear()
    (tmp_path / "beside.png").write_bytes((files.out_dir / "memory.png").read_bytes())
    sizes = probe(
        tmp_path,
        base_url,
        html.replace("</h1>", '</h1><img src="missing.png"><img src="beside.png">'),
        "broken.html",
    )
    assert sizes[:2] == [[0, 0], [1375, 594]]
    assert sorted(page_requests(requested)) == ["/beside.png", "/broken.html", "/missing.png"]

    requested.clear()
    shot = tmp_path / "shot.png"
    done = chromium(
        tmp_path,
        "--window-size=1280,3000",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        f"{base_url}/report/report.html",
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert page_requests(requested) == ["/report/report.html"]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (3000, 1280)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # text and charts, not blank
    dom = chromium(tmp_path, "--dump-dom", files.html.as_uri())  # offline, from the file
    assert "MobileNetV1 benchmark report" in dom.stdout
    assert "no per-layer profiles" in dom.stdout


@pytest.mark.parametrize("columns_dropped", [["device_facts"], ["label", "runtime_version"]])
def test_runs_frame_with_missing_columns(tmp_path: Path, columns_dropped: list[str]) -> None:
    runs, results = two_device_frames()
    files = render_report(
        runs.drop(columns=columns_dropped), results, reference_accuracy(), tmp_path / "r"
    )
    assert "MobileNetV1 benchmark report" in files.html.read_text(encoding="utf-8")


TOC_PROBE = """<script>
window.addEventListener('load', () => {
  const charts = [];
  for (const link of document.querySelectorAll('nav a')) {
    const head = document.getElementById(link.getAttribute('href').slice(1));
    if (!head || head.tagName !== 'H2') continue;
    const imgs = [];
    let node = head.nextElementSibling;
    while (node && node.tagName !== 'H2') {
      for (const img of node.querySelectorAll('img')) {
        imgs.push([img.naturalWidth, img.naturalHeight]);
      }
      node = node.nextElementSibling;
    }
    charts.push({id: head.id, title: link.textContent, imgs: imgs});
  }
  const first = document.querySelector('h2 + figure img');
  const out = document.createElement('pre');
  out.textContent = 'PROBE_' + 'BEGIN' + JSON.stringify({charts: charts,
    first: first ? first.parentElement.previousElementSibling.id : null}) + 'PROBE_' + 'FINISH';
  document.body.appendChild(out);
});
</script></body>"""
MEASURE_FAST = ["--min-time", "0.05", "--max-time", "0.3", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``make demo`` measures, in miniature and for real: two cells in both variants
    with per-node profiles, and two blocks as layer probes."""
    tmp = tmp_path_factory.mktemp("demo")
    common = ["--db", str(tmp / "db.sqlite"), "--models-dir", str(tmp / "models")]
    grid = ["--alpha", "0.25", "--resolution", "128", "160", "--trials", "1"]
    assert (
        main(
            [
                "run",
                *common,
                *grid,
                "--variant",
                "separable",
                "standard",
                "--profile",
                "--label",
                "pairs",
                *MEASURE_FAST,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "layers",
                *common,
                "--alpha",
                "0.25",
                "--resolution",
                "128",
                "--block",
                "2",
                "13",
                "--trials",
                "1",
                *MEASURE_FAST,
            ]
        )
        == 0
    )
    return tmp


def test_every_chart_in_the_contents_has_data_in_chromium(
    demo_store: Path, tmp_path: Path, http_dir: tuple[str, list[str]]
) -> None:
    base_url, _ = http_dir
    files = build_report(demo_store / "db.sqlite", ["pairs", "layers"], None, tmp_path / "r")
    assert files.skipped == ()
    html = files.html.read_text(encoding="utf-8")
    # the page leads with answers: the summary comes before the contents and the charts
    assert html.index('id="summary"') < html.index("<nav>") < html.index('id="mission"')
    (tmp_path / "toc.html").write_text(html.replace("</body>", TOC_PROBE), encoding="utf-8")
    done = chromium(tmp_path, "--dump-dom", f"{base_url}/toc.html")
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"PROBE_BEGIN(.*?)PROBE_FINISH", done.stdout.replace("&quot;", '"'))
    assert found is not None, done.stdout[-2000:]
    seen = json.loads(found.group(1))
    sections = seen["charts"]
    details = ["runs", "devices", "results", "problems"]
    assert [c["id"] for c in sections if c["id"] not in CHART_NAMES] == details
    charts = [c for c in sections if c["id"] in CHART_NAMES]
    assert charts[0]["id"] == "mission" and seen["first"] == "mission"
    assert [c["id"] for c in charts] == list(CHART_NAMES)
    for chart in charts:
        assert chart["imgs"], f"{chart['title']} has no image"
        assert all(w > 200 and h > 200 for w, h in chart["imgs"]), chart
    # each image holds a drawing, not a blank canvas
    for data in re.findall(r'<img src="data:image/png;base64,([^"]+)"', html):
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    answers = files.answers
    assert answers.separable_standard and answers.noise and answers.fastest
    points = pd.read_csv(files.out_dir / "mission.csv")
    assert set(points["level"]) == {"block", "model"}
    assert {"latency", "flops", "params", "weight_bytes", "peak_rss"} <= set(points["series"])
    flops = points[points["series"] == "flops"]
    # counted FLOPs follow the formula exactly: the generator and the cost model agree
    assert (flops["ratio"] / flops["predicted_ratio"]).to_numpy() == pytest.approx(1.0, rel=1e-3)
