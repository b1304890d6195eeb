"""A campaign as the reading verbs see it, and the lab's progress on a terminal and in a log.

Real parts: ``mnbench run --device A B`` measuring two local devices of an inventory at
once (the real runner and onnxruntime), ``lab plan --model`` with a real ONNX file, the
verbs ``results``, ``compare`` and ``report`` over the stored campaign, and the live
display read from a real pseudo-terminal (``pty``) the harness writes to.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.measure.progress import DeviceLines
from results.store import Store
from tests.harness.test_lab import REPO, lab_dir, tiny

__all__ = ["lab_dir"]  # the fixture, shared with test_lab


def _documents(db: Path) -> list[Any]:
    with Store.open(db, readonly=True) as store:
        return [record.document for _, record in store.measurement_records()]


def test_a_campaign_is_read_by_results_compare_and_report(
    lab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = lab_dir / "c.sqlite"
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", str(db)]
    models = ["--models-dir", str(lab_dir / "models")]
    rc = main(["run", "--device", "cpu-a", "cpu-b", *tiny(2), "--cooldown", "0.2s",
               "--label", "two", *common, *models])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    with Store.open(db, readonly=True) as store:
        (campaign,) = store.campaigns()
        runs = store.campaign_run_ids(campaign)
        assert sorted(store.get_run(r).device for r in runs) == ["cpu-a", "cpu-b"]
        assert {store.get_run(r).label for r in runs} == {"two"}  # the label stays the user's
    assert campaign.startswith("two-")
    assert f"`mnbench results --campaign {campaign} --db {db}`" in captured.err
    # Not a terminal: one line per event, nothing redrawn.
    assert "\x1b[" not in captured.err
    events = [line for line in captured.err.splitlines() if " ETA " in line]
    assert len(events) == 4 and all(line.endswith(": ok") for line in events), captured.err

    # The lab path records the same guards as `mnbench run`, after the stored cool-down.
    documents = _documents(db)
    assert len(documents) == 4
    for document in documents:
        guards = document["guards"]
        assert isinstance(guards, dict)
        assert guards["before"] and guards["after"] and guards["kind"] == "local"
        assert guards["cooldown"]["policy"] == "0.2 s" and guards["cooldown"]["waited_s"] >= 0.2

    assert main(["results", "--campaign", campaign, "--format", "json", "--db", str(db)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["device"] for row in rows) == ["cpu-a", "cpu-b"]
    assert {row["campaign"] for row in rows} == {campaign}
    assert main(["results", "--campaign", campaign, "--format", "csv", "--db", str(db)]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["campaign"] for row in table] == [campaign, campaign]
    assert main(["results", "--campaign", campaign, "--db", str(db)]) == 0
    assert capsys.readouterr().out.count(f"campaign {campaign}") == 2  # one block per device
    assert main(["results", "--list", "--db", str(db)]) == 0
    assert capsys.readouterr().out.count(campaign) == 2

    rc = main(["compare", "--campaign", campaign, "cpu-a", "cpu-b", "--db", str(db)])
    out = capsys.readouterr().out
    assert rc in (0, 1, 3) and "geometric mean ratio" in out, out

    report = lab_dir / "report"
    assert main(["report", "--campaign", campaign, "--db", str(db), "--out", str(report)]) == 0
    capsys.readouterr()
    html = (report / "report.html").read_text()
    section = html[html.index('<h2 id="campaign">') : html.index("</table>", html.index(
        '<h2 id="campaign">'))]  # fmt: skip
    assert f"Campaign {campaign}" in section
    assert re.search(r"#\d+ cpu-a", section) and re.search(r"#\d+ cpu-b", section)
    assert "(1 thr)" in section

    assert main(["lab", "status", "--db", str(db)]) == 0
    status = capsys.readouterr().out
    assert f"{campaign}: cpu-a run " in status and f"--campaign {campaign}" in status


def test_bad_campaign_input_is_one_line_and_creates_nothing(
    lab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = lab_dir / "c.sqlite"
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", str(db)]
    assert main(["lab", "plan", "--campaign", "one", "--devices", "cpu-a", *tiny(1), *common,
                 "--models-dir", str(lab_dir / "models")]) == 0  # fmt: skip
    capsys.readouterr()
    out = lab_dir / "report"
    cases = [
        (["results", "--campaign", "nope", "--db", str(db)], "no campaign 'nope'"),
        (["results", "--campaign", "one", "--run", "1", "--db", str(db)], "not both"),
        (["compare", "--campaign", "nope", "a", "b", "--db", str(db)], "no campaign 'nope'"),
        (["compare", "--campaign", "one", "cpu-a", "ghost", "--db", str(db)],
         "has no device (or run) 'ghost'; its devices: cpu-a"),
        (["report", "--campaign", "nope", "--db", str(db), "--out", str(out)],
         "no campaign 'nope'"),
        (["report", "--campaign", "one", "--run", "1", "--db", str(db), "--out", str(out)],
         "not both"),
        (["lab", "work", "--campaign", "nope", "--devices", "cpu-a", *common],
         "no campaign 'nope'"),
    ]  # fmt: skip
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, (argv, err)
    assert not out.exists()
    with Store.open(db, readonly=True) as store:
        assert len(store.list_runs()) == 1 and store.get_run(1).measurements == 0


def test_lab_plan_takes_onnx_files(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab plan --model FILE`` plans the given ONNX files like ``run --model``; a bad
    --shape is refused before anything is stored."""
    models = lab_dir / "models"
    assert main(["generate", "--alpha", "0.25", "--resolution", "32", "--out", str(models)]) == 0
    (onnx_file,) = models.glob("*.onnx")
    db = lab_dir / "m.sqlite"
    common = ["--inventory", str(lab_dir / "devices.toml"), "--db", str(db)]
    fast = ["--threads", "1", "--trials", "1", "--min-time", "0.05", "--max-time", "0.2"]
    argv = ["lab", "plan", "--campaign", "files", "--devices", "cpu-a", *fast, *common]
    capsys.readouterr()
    assert main([*argv, "--model", str(onnx_file), "--shape", "nosuch=1x3x32x32"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert not db.exists()
    assert main([*argv, "--model", str(onnx_file)]) == 0
    assert "campaign files: run 1 on cpu-a, 1 items" in capsys.readouterr().err
    assert main(["lab", "work", "--devices", "cpu-a", *common]) == 0
    with Store.open(db, readonly=True) as store:
        (row,) = store.results_frame([1]).to_dict("records")
        config = store.get_run(1).config
    assert row["status"] == "ok" and row["campaign"] == "files"
    assert [Path(m["path"]).name for m in config["models"]] == [onnx_file.name]


def test_device_lines_in_a_log_and_live() -> None:
    """The same text either way: one line per event in a log; on a terminal the block is
    redrawn in place, messages go above it, long lines are cut to the width."""
    now = [0.0]
    log = io.StringIO()
    lines = DeviceLines(log, ["pi4", "pixel7"], live=False, clock=lambda: now[0])
    lines.start("pi4")
    now[0] = 10.0
    lines.item("pi4", 1, 4, "m threads=1 trial 1: ok")
    lines.say("pixel7: stopped: lost the device")
    lines.finish("pi4", "4 measured")
    assert log.getvalue().splitlines() == [
        "pi4    [#####...............] 1/4 ETA 0:30  m threads=1 trial 1: ok",
        "pixel7: stopped: lost the device",
        "pi4: 4 measured",
    ]
    screen = io.StringIO()
    live = DeviceLines(screen, ["pi4", "pixel7"], live=True, clock=lambda: now[0])
    live.start("pi4")
    now[0] = 20.0
    live.item("pi4", 1, 4, "x" * 500)
    now[0] = 25.0
    live.tick()
    live.say("a message")
    text = screen.getvalue()
    assert text.count("\x1b[2F") == 3  # redrawn in place, never scrolled
    assert "ETA 0:30" in text and "ETA 0:25" in text  # counting down between events
    assert "\x1b[J" + "a message\n" in text
    assert max(len(part) for part in text.split("\n")) < 90  # cut to the width (80)


def _read_pty(master: int, process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer closed it
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def test_a_terminal_sees_one_line_per_device_redrawn_in_place(lab_dir: Path) -> None:
    """``mnbench run --device A B`` on a real pseudo-terminal: the device block is drawn and
    redrawn in place (cursor up over both lines), each line ends at the terminal's width,
    and the last drawing says what each device did."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    db = lab_dir / "tty.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--device", "cpu-a", "cpu-b", *tiny(2),
         "--inventory", str(lab_dir / "devices.toml"), "--db", str(db),
         "--models-dir", str(lab_dir / "models")],
        cwd=lab_dir, env=env, stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    try:
        output = _read_pty(master, process, timeout_s=240)
        assert process.wait(timeout=60) == 0, output.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    text = output.decode()
    assert text.count("\x1b[2F") >= 4, text  # the two-line block redrawn in place
    drawn = [part.split("\r")[-1] for part in text.split("\x1b[2K")[1:]]
    assert all(len(line.split("\n")[0]) < 100 for line in drawn)
    last = text[text.rindex("\x1b[2F") :]
    assert re.search(r"cpu-a \[#{20}\] 2/2  2 measured, 0 failed", last), last
    assert re.search(r"cpu-b \[#{20}\] 2/2  2 measured, 0 failed", last), last
    assert "ETA" in text
