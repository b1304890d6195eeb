"""Hostile files, outputs and stores at the command line: bounded reads, owned outputs, reads
that write nothing.

Every case runs ``python -m harness`` in a subprocess under a 2 GiB address-space ceiling
and a time limit, in a workspace holding a real results store (``make_store``), FIFOs,
directories, a read-only directory and the user's own files. A refusal must be exit 2,
exactly one line on stderr, no traceback, and leave every file of the workspace as it was
(names, kinds and the sha256 of each regular file) and no process behind.

Categories: ``read`` (a FIFO, device, directory or oversized file where a file is read),
``out`` (report ``--out`` and ``--chart`` never replace or remove a file mnbench cannot
prove it wrote, nor the database), ``ro`` (verbs that only read leave the database, its
write-ahead log and its directory as they were).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reports.build import MANIFEST_NAME
from tests.reports.storedata import make_store

MEMORY_CEILING = 2 << 30
TIME_LIMIT_S = 120
REPO = Path(__file__).resolve().parents[1]

Snapshot = dict[str, tuple[str, str]]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root``: its kind, and for a regular file its sha256."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            status = os.lstat(path)
            mode = status.st_mode
            if stat.S_ISREG(mode) and status.st_size > 16 << 20:  # the sparse giants
                found[str(path.relative_to(root))] = ("file", f"{status.st_size}")
            elif stat.S_ISREG(mode):
                found[str(path.relative_to(root))] = ("file", _sha(path))
            else:
                found[str(path.relative_to(root))] = (stat.filemode(mode)[0], "")
    return found


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mnbench(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MNBENCH_DB"}
    environ.update({"PYTHONPATH": str(REPO), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
        preexec_fn=_limit_memory,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], contains: str = "") -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert contains in lines[0], lines[0]


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "lab.sqlite"
    make_store(path, runs=2)
    return path


@pytest.fixture()
def workspace(tmp_path: Path, store_file: Path) -> Iterator[Path]:
    """A working directory: the store, a FIFO, a directory, a socket, a read-only
    directory, the user's notes, and files of NUL bytes, deep nesting and great size."""
    shutil.copy(store_file, tmp_path / "lab.sqlite")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "adir").mkdir()
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "nul.toml").write_bytes(b'[devices.a]\nkind = "local"\0\n')
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with open(tmp_path / "huge.toml", "wb") as handle:  # sparse: large, but takes no disk
        handle.truncate(3 << 30)
    with open(tmp_path / "huge.csv", "wb") as handle:
        handle.truncate(3 << 30)
    locked = tmp_path / "locked"
    locked.mkdir()
    yield tmp_path
    if locked.exists():
        locked.chmod(0o755)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    contains: str = ""
    env: tuple[tuple[str, str], ...] = ()


READ_CASES = [
    Case("inventory /dev/zero", ("devices", "list", "--inventory", "/dev/zero"), "device"),
    Case("inventory FIFO", ("devices", "list", "--inventory", "fifo"), "FIFO"),
    Case("inventory directory", ("devices", "list", "--inventory", "adir"), "directory"),
    Case("inventory NUL byte", ("devices", "list", "--inventory", "nul.toml"), "NUL"),
    Case("inventory deep nesting", ("devices", "list", "--inventory", "deep.toml"), "deeply"),
    Case("inventory 3 GiB", ("devices", "list", "--inventory", "huge.toml"), "larger"),
    Case(
        "accuracy /dev/zero",
        ("report", "--db", "lab.sqlite", "--accuracy", "/dev/zero", "--out", "r"),
        "--accuracy",
    ),
    Case(
        "accuracy FIFO",
        ("report", "--db", "lab.sqlite", "--accuracy", "fifo", "--out", "r"),
        "FIFO",
    ),
    Case(
        "accuracy directory",
        ("report", "--db", "lab.sqlite", "--accuracy", "adir", "--out", "r"),
        "directory",
    ),
    Case(
        "accuracy 3 GiB",
        ("report", "--db", "lab.sqlite", "--accuracy", "huge.csv", "--out", "r"),
        "larger",
    ),
    Case("results --db FIFO", ("results", "--db", "fifo"), "FIFO"),
    Case("results --db /dev/zero", ("results", "--db", "/dev/zero"), "device"),
    Case("results --db directory", ("results", "--db", "adir"), "directory"),
    Case("report --db FIFO", ("report", "--db", "fifo", "--out", "r"), "FIFO"),
    Case("compare --db FIFO", ("compare", "1", "2", "--db", "fifo"), "FIFO"),
    Case("MNBENCH_DB FIFO", ("results",), "FIFO", (("MNBENCH_DB", "fifo"),)),
    Case("db copy SRC FIFO", ("db", "copy", "fifo", "copy.sqlite"), "SRC"),
    Case("db copy DST FIFO", ("db", "copy", "lab.sqlite", "fifo"), "DST"),
    Case("db copy DST /dev/zero", ("db", "copy", "lab.sqlite", "/dev/zero"), "DST"),
    Case("db copy DST directory", ("db", "copy", "lab.sqlite", "adir"), "DST"),
    Case("db copy same file", ("db", "copy", "lab.sqlite", "./lab.sqlite"), "same"),
]

URL_CASES = [
    Case("mysql:// URL", ("results", "--db", "mysql://me@host/db"), "mysql://"),
    Case("upper-case scheme", ("results", "--db", "POSTGRESQL://me@host/db"), "lowercase"),
    Case("file:// URL", ("db", "copy", "lab.sqlite", "file:///tmp/x.sqlite"), "file://"),
    Case("100k-character path", ("results", "--db", "a" * 100_000), "characters"),
    Case("control character in --db", ("results", "--db", "a\x01b/../x"), "no results database"),
    Case(
        "missing parent directory",
        ("lab", "work", "--db", "nowhere/l.sqlite", "--devices", "local"),
        "does not exist",
    ),
]

NUMBER_CASES = [
    Case("cooldown overflow", ("run", "--cooldown", "1" + "0" * 400 + "s"), "finite"),
    Case("regress --baseline ''", ("regress", "--baseline", "", "--candidate", "current"), "empty"),
    Case(
        "regress --baseline missing",
        ("regress", "--baseline", "nowhere/python", "--candidate", "current"),
        "does not exist",
    ),
    Case(
        "regress --baseline directory",
        ("regress", "--baseline", "adir", "--candidate", "current"),
        "directory",
    ),
    Case("--alpha inf", ("generate", "--alpha", "inf", "--resolution", "96"), "finite"),
]

OUT_CASES = [
    Case(
        "chart: the user's regression.png",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "charts"),
        "regression.png",
    ),
    Case(
        "chart: a file",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "notes.txt"),
        "--chart",
    ),
    Case(
        "chart: a FIFO",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "fifo"),
        "--chart",
    ),
    Case(
        "chart: a read-only directory",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "locked"),
        "writable",
    ),
    Case(
        "chart: below a file",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "notes.txt/c"),
        "--chart",
    ),
    Case(
        "chart: a link named regression.svg",
        ("compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "linked"),
        "regression.svg",
    ),
    Case(
        "report: a planted manifest naming the user's report.html",
        ("report", "--db", "lab.sqlite", "--run", "all", "--out", "planted"),
        "report.html",
    ),
    Case(
        "report --out a FIFO",
        ("report", "--db", "lab.sqlite", "--out", "fifo"),
        "--out",
    ),
]


def _prepare_outputs(root: Path) -> None:
    charts = root / "charts"
    charts.mkdir()
    (charts / "regression.png").write_bytes(b"the user's own chart")
    linked = root / "linked"
    linked.mkdir()
    (linked / "regression.svg").symlink_to(root / "notes.txt")
    (root / "locked").chmod(0o555)
    planted = root / "planted"
    planted.mkdir()
    (planted / "report.html").write_text("my report\n")
    (planted / MANIFEST_NAME).write_text(
        json.dumps({"schema": "mnbench.report-manifest/1", "files": ["report.html"]})
    )


@pytest.mark.parametrize("case", READ_CASES, ids=lambda c: f"read: {c.id}")
def test_a_file_that_is_not_a_small_regular_file_is_one_line(case: Case, workspace: Path) -> None:
    before = snapshot(workspace)
    result = mnbench(list(case.argv), workspace, dict(case.env))
    assert_refused(result, case.contains)
    assert snapshot(workspace) == before


@pytest.mark.parametrize(
    "case",
    [
        *[pytest.param(c, id=f"url: {c.id}") for c in URL_CASES],
        *[pytest.param(c, id=f"number: {c.id}") for c in NUMBER_CASES],
    ],
)
def test_a_location_or_number_is_one_line_before_any_work(case: Case, workspace: Path) -> None:
    before = snapshot(workspace)
    result = mnbench(list(case.argv), workspace, dict(case.env))
    assert_refused(result, case.contains)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("case", OUT_CASES, ids=lambda c: f"out: {c.id}")
def test_an_output_never_clobbers_what_mnbench_cannot_prove_it_wrote(
    case: Case, workspace: Path
) -> None:
    if os.geteuid() == 0 and "read-only" in case.id:
        pytest.skip("root writes into a read-only directory")
    _prepare_outputs(workspace)
    before = snapshot(workspace)
    result = mnbench(list(case.argv), workspace)
    assert_refused(result, case.contains)
    assert snapshot(workspace) == before


def _report(workspace: Path, out: str) -> None:
    result = mnbench(["report", "--db", "lab.sqlite", "--run", "all", "--out", out], workspace)
    assert result.returncode == 0, result.stderr[-2000:]


def _plant(out: Path, names: list[str], hashed: bool) -> None:
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["files"] += names
    if hashed:
        for name in names:
            manifest["sha256"][name] = [_sha(out / name)]
    else:
        del manifest["sha256"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))


def _notes_kept_unhashed(workspace: Path) -> list[Path]:
    _report(workspace, "r")
    (workspace / "r" / "notes.txt").write_text("mine\n")
    _plant(workspace / "r", ["notes.txt"], hashed=False)
    result = mnbench(["report", "--db", "lab.sqlite", "--run", "all", "--out", "r"], workspace)
    assert_refused(result, "not written by an mnbench report")  # a hashless manifest proves no file
    return [workspace / "r" / "notes.txt"]


def _notes_kept_hashed(workspace: Path) -> list[Path]:
    _report(workspace, "r")
    (workspace / "r" / "notes.txt").write_text("mine\n")
    _plant(workspace / "r", ["notes.txt"], hashed=True)
    _report(workspace, "r")
    return [workspace / "r" / "notes.txt"]


def _database_kept(workspace: Path) -> list[Path]:
    """``--out .`` beside the database, with a manifest naming the database."""
    for name in os.listdir(workspace):
        if name != "lab.sqlite":
            path = workspace / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    (workspace / MANIFEST_NAME).write_text(
        json.dumps(
            {
                "schema": "mnbench.report-manifest/1",
                "files": ["lab.sqlite"],
                "sha256": {"lab.sqlite": [_sha(workspace / "lab.sqlite")]},
            }
        )
    )
    _report(workspace, ".")
    return [workspace / "lab.sqlite"]


def _edited_chart_kept(workspace: Path) -> list[Path]:
    """A chart of an earlier report that the user edited is neither replaced nor removed."""
    _report(workspace, "r")
    (workspace / "r" / "summary.md").write_text("my edits\n")
    result = mnbench(["report", "--db", "lab.sqlite", "--out", "r"], workspace)
    assert_refused(result, "summary.md")
    return [workspace / "r" / "summary.md"]


def _chart_replaced_when_ours(workspace: Path) -> list[Path]:
    """A chart mnbench wrote is replaced by the next one (the manifest proves it)."""
    argv = ["compare", "1", "2", "--force", "--db", "lab.sqlite", "--chart", "c"]
    assert mnbench(argv, workspace).returncode in (0, 1, 3)
    (workspace / "c" / "notes.txt").write_text("mine\n")
    assert mnbench(argv, workspace).returncode in (0, 1, 3)
    return [workspace / "c" / "notes.txt"]


KEEP_CASES: list[tuple[str, Callable[[Path], list[Path]]]] = [
    ("report: an unhashed manifest naming notes.txt", _notes_kept_unhashed),
    ("report: a hashed manifest naming notes.txt", _notes_kept_hashed),
    ("report --out . with a manifest naming the database", _database_kept),
    ("report: a chart the user edited", _edited_chart_kept),
    ("chart: a second chart beside the user's notes", _chart_replaced_when_ours),
]


@pytest.mark.parametrize("case", KEEP_CASES, ids=lambda c: f"out: {c[0]}")
def test_a_report_keeps_the_users_files(
    case: tuple[str, Callable[[Path], list[Path]]], workspace: Path
) -> None:
    before = {path: path.read_bytes() for path in [workspace / "lab.sqlite"]}
    for path in case[1](workspace):
        assert path.exists(), path
        if path.name == "lab.sqlite":
            assert path.read_bytes() == before[path]


# ------------------------------------------------------------------ read-only reads


def _leave_wal(db: Path) -> None:
    """A writer that committed into the write-ahead log and was killed before checkpointing."""
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "c.execute(\"UPDATE runs SET label = 'relabelled' WHERE id = 1\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)


READ_ONLY_VERBS = [
    ("results --list", ("results", "--list", "--db", "lab.sqlite")),
    ("results", ("results", "--db", "lab.sqlite")),
    ("compare", ("compare", "1", "2", "--force", "--db", "lab.sqlite")),
    ("report", ("report", "--db", "lab.sqlite", "--run", "all", "--out", "../out")),
]


@pytest.mark.parametrize("verb", READ_ONLY_VERBS, ids=lambda v: f"ro: {v[0]} with a WAL")
def test_a_reader_never_checkpoints_anothers_log(
    verb: tuple[str, tuple[str, ...]], tmp_path: Path, store_file: Path
) -> None:
    home = tmp_path / "db"
    home.mkdir()
    shutil.copy(store_file, home / "lab.sqlite")
    _leave_wal(home / "lab.sqlite")
    assert (home / "lab.sqlite-wal").stat().st_size > 0
    before = snapshot(home)
    result = mnbench(list(verb[1]), home)
    assert result.returncode in (0, 1, 3), result.stderr[-2000:]
    after = snapshot(home)
    after.pop("lab.sqlite-shm", None)  # the log's index, rebuilt by any reader
    before.pop("lab.sqlite-shm", None)
    assert after == before


@pytest.mark.parametrize("verb", READ_ONLY_VERBS, ids=lambda v: f"ro: {v[0]}")
def test_a_reader_leaves_the_database_directory_as_it_was(
    verb: tuple[str, tuple[str, ...]], tmp_path: Path, store_file: Path
) -> None:
    home = tmp_path / "db"
    home.mkdir()
    shutil.copy(store_file, home / "lab.sqlite")
    before = snapshot(home)
    result = mnbench(list(verb[1]), home)
    assert result.returncode in (0, 1, 3), result.stderr[-2000:]
    assert snapshot(home) == before


def test_a_reader_cannot_write(tmp_path: Path, store_file: Path) -> None:
    from results.store import Store

    db = tmp_path / "lab.sqlite"
    shutil.copy(store_file, db)
    with (
        Store.open(db, readonly=True) as store,
        pytest.raises(sqlite3.OperationalError, match="readonly"),
    ):
        store.database.execute("DELETE FROM runs")
