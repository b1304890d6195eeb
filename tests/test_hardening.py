"""What a report may delete, read-only databases, file modes, escaping, de-duplicated plans.

Companions of the adversarial table (tests/test_adversarial.py) for the behaviours a single
refusal line cannot show: a report keeps the user's files named like its charts, read verbs
work on a read-only mount and never create or upgrade a database, files honour the umask,
labels are inert in markdown and on the terminal, and repeated plan items are measured once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from mobilenet.table import format_table, markdown_text, terminal_safe
from reports.build import MANIFEST_NAME
from results.store import MIGRATIONS, Store
from tests.reports.storedata import add_grid_run, make_store
from tests.tooling import skip_or_fail

CHART_NAMES_THE_USER_ALSO_USES = (
    "roofline.png",
    "prediction.csv",
    "time_share.svg",
    "layer_ratio.png",
    "ratio_vs_channels.csv",
)


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab.sqlite"
    make_store(path, runs=2)
    return path


# ------------------------------------------------------------------ report ownership


def test_report_refuses_a_directory_of_the_users_files(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    for name in CHART_NAMES_THE_USER_ALSO_USES:
        (out / name).write_text(f"my own {name}\n")
    before = _digests(out)
    with pytest.raises(Exception) as caught:
        from reports.build import build_report

        build_report(lab, ["all"], None, out)
    assert "no earlier mnbench report" in str(caught.value)
    assert _digests(out) == before


def test_report_keeps_user_files_added_to_its_directory(lab: Path, tmp_path: Path) -> None:
    """The charts without data (layer charts here) are never unlinked unless a report of
    ours wrote them: the user's files of those names survive a second report."""
    out = tmp_path / "report"
    assert main(["report", "--db", str(lab), "--run", "all", "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert "report.html" in manifest["files"] and "roofline.png" not in manifest["files"]
    for name in (*CHART_NAMES_THE_USER_ALSO_USES, "notes.txt"):
        (out / name).write_text(f"my own {name}\n")
    assert main(["report", "--db", str(lab), "--run", "all", "--out", str(out)]) == 0
    for name in (*CHART_NAMES_THE_USER_ALSO_USES, "notes.txt"):
        assert (out / name).read_text() == f"my own {name}\n"


def test_report_removes_only_its_own_stale_files(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--db", str(lab), "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    (out / "roofline.png").write_bytes(b"a chart an earlier report of ours drew")
    manifest["files"].append("roofline.png")
    manifest["sha256"]["roofline.png"] = [
        hashlib.sha256(b"a chart an earlier report of ours drew").hexdigest()
    ]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert main(["report", "--db", str(lab), "--out", str(out)]) == 0
    assert not (out / "roofline.png").exists()
    assert "roofline.png" not in json.loads((out / MANIFEST_NAME).read_text())["files"]


def test_report_refuses_to_replace_a_file_it_did_not_write(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", "--db", str(lab), "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["files"].remove("summary.md")  # as if the user had put their own summary there
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    (out / "summary.md").write_text("my summary\n")
    capsys.readouterr()
    assert main(["report", "--db", str(lab), "--out", str(out)]) == 2
    assert "summary.md was not written by an mnbench report" in capsys.readouterr().err
    assert (out / "summary.md").read_text() == "my summary\n"


def test_a_foreign_manifest_is_refused(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / MANIFEST_NAME).write_text('{"files": ["../../etc/passwd"]}')
    assert main(["report", "--db", str(lab), "--out", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]


def test_interrupted_report_does_not_suggest_resume(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import reports.build

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reports.build, "build_report", interrupted)
    assert main(["report", "--db", str(lab), "--out", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "run it again" in err


# ------------------------------------------------------------------ read-only databases


@pytest.fixture
def read_only_mount(lab: Path) -> Iterator[Path]:
    """A small tmpfs holding a copy of the lab database, remounted read-only."""
    if os.geteuid() != 0:
        skip_or_fail("mounting a read-only tmpfs needs root")
    mount = Path(f"/tmp/mnbench-test-ro-{os.getpid()}")
    mount.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        mount.rmdir()
        skip_or_fail(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        (mount / "lab.sqlite").write_bytes(lab.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def test_read_verbs_work_on_a_read_only_mount(
    read_only_mount: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(read_only_mount / "lab.sqlite")
    assert main(["results", "--db", db, "--list"]) == 0
    assert "desktop" in capsys.readouterr().out
    assert main(["results", "--db", db, "--run", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(["compare", "1", "2", "--db", db, "--force", "--format", "json"]) in (0, 1, 3)
    assert json.loads(capsys.readouterr().out)["baseline_run"] == 1
    assert main(["report", "--db", db, "--run", "all", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()
    assert sorted(p.name for p in read_only_mount.iterdir()) == ["lab.sqlite"]


def test_writers_say_read_only(
    read_only_mount: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for db in ("lab.sqlite", "new.sqlite"):
        capsys.readouterr()
        path = str(read_only_mount / db)
        argv = ["run", "--db", path, "--models-dir", str(tmp_path / "m"), "--trials", "1"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "read-only" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in read_only_mount.iterdir()) == ["lab.sqlite"]
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_read_verbs_leave_the_file_and_directory_as_they_were(lab: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.sqlite"
    db.write_bytes(lab.read_bytes())
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    assert main(["results", "--db", str(db), "--run", "all"]) == 0
    assert main(["compare", "1", "2", "--db", str(db), "--force"]) in (0, 1, 3)
    assert main(["layers", "--from-run", "1", "--db", str(db)]) == 2  # no probes: refused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.sqlite"]  # no -wal, no -shm
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_read_verbs_never_upgrade(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.sqlite"
    db.write_bytes(lab.read_bytes())
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    newer = [*MIGRATIONS, "CREATE TABLE later_feature (x INTEGER)"]
    with pytest.raises(Exception, match=f"schema version {len(MIGRATIONS)} and this mnbench"):
        Store.open(db, readonly=True, migrations=newer)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    with Store.open(db, migrations=newer) as store:  # a writer upgrades it
        assert store.schema_version == len(newer)


def test_usage_errors_create_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNBENCH_DB", raising=False)
    for argv in (
        ["run", "--trials", "0"],
        ["run", "--timeout", "nan"],
        ["run", "--model", "missing.onnx"],
        ["run", "--resume", "1"],
        ["results"],
        ["compare", "1", "2"],
        ["layers", "--kernel", "4"],
        ["regress", "--baseline", "current", "--candidate", "current", "--trials", "1"],
    ):
        assert main(argv) == 2, argv
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ file modes


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_honour_the_umask(lab: Path, tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        models = tmp_path / "models"
        argv = ["generate", "--alpha", "0.25", "--resolution", "128", "--out", str(models)]
        assert main(argv) == 0
        assert main(["report", "--db", str(lab), "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    written = [*models.iterdir(), *(tmp_path / "r").iterdir()]
    assert {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~umask}


# ------------------------------------------------------------------ escaping


HOSTILE = "evil\n| injected | row |\n<img src=x onerror=alert(1)> [link](http://x) \x1b[31mred"


def test_summary_markdown_is_inert(tmp_path: Path) -> None:
    db = tmp_path / "lab.sqlite"
    with Store.open(db) as store:
        add_grid_run(
            store, device="dev|ice\n# title", runtime="1.0", label=HOSTILE, speed=1, seed=0
        )
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "r")]) == 0
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "\x1b" not in summary
    assert not re.search(r"(?<!\\)<img|(?<!\\)\]\(http", summary)  # only escaped markup
    assert not any(line.startswith(("| injected", "# title")) for line in summary.splitlines())
    table = [line for line in summary.splitlines() if line.startswith("|")]
    widths = {line.replace("\\|", "").count("|") for line in table}
    assert len(widths) == 1  # every row of the table has the same number of cells


def test_terminal_output_carries_no_escape_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lab.sqlite"
    with Store.open(db) as store:
        add_grid_run(
            store, device="\x1b]0;owned\x07", runtime="1.0", label=HOSTILE, speed=1, seed=0
        )
    for argv in (["results", "--list"], ["results"]):
        assert main([*argv, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out


def test_escaping_helpers() -> None:
    assert terminal_safe("a\x1b[2Jb\rc\x9b") == "a\\x1b[2Jb\\rc\\x9b"
    assert markdown_text("a|b\n*c*") == "a\\|b \\*c\\*"
    assert "\x1b" not in format_table(["x\x1b"], [["\x1b[31m"]])


# ------------------------------------------------------------------ repeated plan items


def test_repeated_grid_values_are_generated_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--alpha", "0.25", "0.25", "--resolution", "128", "128"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "--alpha repeats a value" in err and "--resolution repeats a value" in err
    assert len(list(tmp_path.glob("*.onnx"))) == 1


def test_repeated_threads_and_files_are_measured_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real run: ``--threads 1 1`` and one file named twice make one measurement."""
    models = tmp_path / "models"
    assert main(["generate", "--alpha", "0.25", "--resolution", "128", "--out", str(models)]) == 0
    model = models / "mobilenet_v1_0.25_128.onnx"
    db = tmp_path / "lab.sqlite"
    argv = ["run", "--model", str(model), str(tmp_path / "models" / ".." / "models" / model.name)]
    argv += ["--threads", "1", "1", "--trials", "1", "--min-time", "0.05", "--max-time", "0.2"]
    capsys.readouterr()
    assert main([*argv, "--db", str(db), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--threads repeats a value" in err and "--model names a file more than once" in err
    assert "1 measured" in err
    with Store.open(db, readonly=True) as store:
        assert store.get_run(1).measurements == 1
