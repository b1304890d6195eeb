"""A results store is untrusted input: crafted fields of a real stored run are refused.

One real tiny ``mnbench run`` (one small cell, one trial, very short timing) makes the store;
each case copies it, edits one field with sqlite3 and runs a verb that reads it back in a
subprocess under a 2 GiB address-space ceiling. A refused case exits 2 with exactly one
stderr line naming the run and the field, no traceback, no file of the user's changed (the
models directory and a decoy directory a stored field names are snapshotted), nothing
measured and no process left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MEMORY_CEILING = 2 * 2**30
FAST = ["--min-time", "0.02", "--max-time", "0.05"]
CELL = ["--alpha", "0.25", "--resolution", "32", "--threads", "1", "--trials", "1"]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))


def _mnbench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("MNBENCH_MODELS", None)
    env.pop("MNBENCH_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        preexec_fn=_limit_memory,
    )


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a real store (``db.sqlite``) of one complete run and its ``models``."""
    home = tmp_path_factory.mktemp("stored")
    done = _mnbench(
        home, "run", "--db", "db.sqlite", "--models-dir", "models", *CELL, *FAST, "--quiet"
    )
    assert done.returncode == 0, done.stderr
    return home


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _workspace(stored_run: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(stored_run, work)
    decoy = work / "decoy"
    decoy.mkdir()
    (decoy / "mobilenet_v1_0.25_32.onnx").write_text("a user's own file\n")
    return work


def _config(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as con:
        text = con.execute("SELECT config FROM runs WHERE id = 1").fetchone()[0]
    con.close()
    config: dict[str, Any] = json.loads(text)
    return config


def _execute(db: Path, sql: str, *params: object) -> None:
    con = sqlite3.connect(db)
    with con:
        con.execute(sql, params)
    con.close()


def _set_config(db: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    config = _config(db)
    edit(config)
    _execute(db, "UPDATE runs SET config = ? WHERE id = 1", json.dumps(config))


def _set_model(db: Path, **fields: object) -> None:
    _set_config(db, lambda c: c["models"][0].update(fields))


def _set_spec(db: Path, **fields: object) -> None:
    _set_config(db, lambda c: c["models"][0]["spec"].update(fields))


def _set_device(db: Path, url: str) -> None:
    _set_config(db, lambda c: c.update(device=url))
    _execute(db, "UPDATE runs SET device = ? WHERE id = 1", url)


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    edit: Callable[[Path], None]
    field: str
    verb: tuple[str, ...] = ("run", "--resume", "1")
    names_run: bool = True


def _sql(statement: str, *params: object) -> Callable[[Path], None]:
    return lambda db: _execute(db, statement, *params)


def _conf(**changes: object) -> Callable[[Path], None]:
    return lambda db: _set_config(db, lambda c: c.update(changes))


def _settings(**changes: object) -> Callable[[Path], None]:
    return lambda db: _set_config(db, lambda c: c["settings"].update(changes))


def _spec(**changes: object) -> Callable[[Path], None]:
    return lambda db: _set_spec(db, **changes)


def _url(url: str) -> Callable[[Path], None]:
    return lambda db: _set_device(db, url)


def _many_models(db: Path) -> None:
    _set_config(db, lambda c: c.update(models=c["models"] * 120_000))


DEEP = "[" * 200_000 + "]" * 200_000
HOST = "ssh://u@h.invalid"
RUN_1 = "UPDATE runs SET {} WHERE id = 1"
SAMPLES = "UPDATE measurements SET document = json_set(document, '$.samples_ms', json(?))"
LIST = ("results", "--list")
SHOW = ("results", "--run", "1")

RESUME_CASES = [
    Case("plan size", "a million trials", _conf(trials=10**6), "plan size"),
    Case(
        "plan size",
        "a thousand thread counts",
        _conf(threads=list(range(1, 1001)), trials=200),
        "plan size",
    ),
    Case("plan size", "120,000 model entries", _many_models, "model list"),
    Case("plan size", "repeated thread counts", _conf(threads=[1] * 500), "thread counts"),
    Case(
        "specs",
        "alpha 2 at 4096 px standard D_K 11",
        _spec(alpha=2.0, resolution=4096, variant="standard", kernel=11),
        "model spec",
    ),
    Case("specs", "a billion classes", _spec(classes=10**9), "model spec"),
    Case("specs", "resolution past the limit", _spec(resolution=10**6), "model spec"),
    Case("specs", "kernel 13", _spec(kernel=13), "model spec"),
    Case(
        "settings", "negative min samples", _settings(min_samples=-1), "runner setting min_samples"
    ),
    Case("settings", "batch of a million", _settings(batch=10**6), "runner setting batch"),
    Case("settings", "a timeout of a year", _conf(timeout_s=3.2e7), "timeout"),
    Case("urls", "identity file", _url(f"{HOST}?identity_file=/etc/shadow"), "device URL"),
    Case("urls", "known hosts file", _url(f"{HOST}?known_hosts_file=/tmp/k"), "device URL"),
    Case("urls", "accept new host keys", _url(f"{HOST}?accept_new_host_key=1"), "device URL"),
    Case("urls", "a work directory", _url(f"{HOST}?workdir=/home/u"), "device URL"),
    Case("urls", "an adb server", _url("adb://x?server=evil.invalid:5037"), "device URL"),
    Case(
        "urls",
        "UserKnownHostsFile",
        _url(f"{HOST}?ssh_option=UserKnownHostsFile%3D%2Fdev%2Fnull"),
        "device URL",
    ),
    Case(
        "urls",
        "IdentityFile option",
        _url(f"{HOST}?ssh_option=IdentityFile%3D%2Ftmp%2Fk"),
        "device URL",
    ),
    Case(
        "urls",
        "ProxyJump option",
        _url(f"{HOST}?ssh_option=ProxyJump%3Devil.invalid"),
        "device URL",
    ),
    Case(
        "urls", "HostKeyAlias option", _url(f"{HOST}?ssh_option=HostKeyAlias%3Dother"), "device URL"
    ),
    Case("urls", "a program", _url(f"{HOST}?python=/bin/sh"), "device URL"),
    Case("urls", "a malformed URL", _url("ssh://[::1"), "device URL"),
    Case(
        "paths", "a million-character models dir", _conf(models_dir="d" * 10**6), "models directory"
    ),
    Case(
        "paths",
        "a million-character model path",
        lambda db: _set_model(db, path="/" + "p" * 10**6),
        "model name or path",
    ),
    Case(
        "json",
        "deeply nested configuration",
        _sql(RUN_1.format("config = ?"), DEEP),
        "configuration",
    ),
    Case(
        "json",
        "malformed configuration",
        _sql(RUN_1.format("config = '{\"threads\": [1'")),
        "configuration",
    ),
    Case("json", "configuration is a list", _sql(RUN_1.format("config = '[]'")), "configuration"),
    Case(
        "json",
        "device facts are a number",
        _sql(RUN_1.format("device_facts = '7'")),
        "device facts",
    ),
    Case(
        "json", "configuration is a blob", _sql(RUN_1.format("config = x'ff00'")), "configuration"
    ),
    Case(
        "json",
        "nested layers scope",
        _conf(layers=json.loads("[" * 100 + "]" * 100)),
        "configuration",
    ),
    Case("types", "finish time a blob", _sql(RUN_1.format("finished_at = x'01'")), "finish time"),
    Case("types", "device kind unknown", _sql(RUN_1.format("device_kind = 'x'")), "device kind"),
    Case("types", "device is a blob", _sql(RUN_1.format("device = x'00'")), "device"),
    Case(
        "types",
        "harness version a blob",
        _sql(RUN_1.format("harness_version = x'00'")),
        "harness version",
    ),
    Case("labels", "a long label on resume", _sql(RUN_1.format("label = ?"), "L" * 201), "label"),
]

READ_CASES = [
    Case(
        "labels",
        "a million-character label",
        _sql(RUN_1.format("label = ?"), "L" * 10**6),
        "label",
        LIST,
    ),
    Case("labels", "a label that is a blob", _sql(RUN_1.format("label = x'00'")), "label", LIST),
    Case(
        "json",
        "deep facts on listing",
        _sql(RUN_1.format("device_facts = ?"), DEEP),
        "device facts",
        LIST,
    ),
    Case(
        "documents",
        "250,000 samples",
        _sql(SAMPLES, json.dumps([1.0] * 250_000)),
        "measurement samples",
        SHOW,
    ),
    Case("documents", "samples are text", _sql(SAMPLES, '["x"]'), "measurement samples", SHOW),
    Case(
        "documents",
        "malformed document",
        _sql("UPDATE measurements SET document = '{'"),
        "measurement document",
        SHOW,
    ),
    Case(
        "documents",
        "deeply nested document",
        _sql("UPDATE measurements SET document = ?", DEEP),
        "measurement document",
        SHOW,
    ),
    Case(
        "dropped table",
        "measurements",
        _sql("DROP TABLE measurements"),
        "no such table",
        SHOW,
        False,
    ),
    Case(
        "dropped table", "runs on resume", _sql("DROP TABLE runs"), "no such table", names_run=False
    ),
]

CASES = RESUME_CASES + READ_CASES


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}: {c.name}" for c in CASES])
def test_crafted_store_field_is_refused(stored_run: Path, tmp_path: Path, case: Case) -> None:
    work = _workspace(stored_run, tmp_path)
    db = work / "db.sqlite"
    case.edit(db)
    before = _snapshot(work)
    done = _mnbench(work, *case.verb, "--db", "db.sqlite", *_models_flag(case))
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert case.field in lines[0] and ("run 1" in lines[0] or not case.names_run), lines[0][:500]
    assert len(lines[0]) < 1000
    assert _snapshot(work) == before


def _models_flag(case: Case) -> list[str]:
    return ["--models-dir", "models", "--quiet"] if case.verb[0] == "run" else []


def test_stored_models_dir_is_never_a_write_target(stored_run: Path, tmp_path: Path) -> None:
    """A stored ``models_dir`` naming another directory, with the models gone, regenerates
    into the command line's directory; the decoy's file of the same name is untouched."""
    work = _workspace(stored_run, tmp_path)
    db = work / "db.sqlite"
    decoy = work / "decoy"
    name = "mobilenet_v1_0.25_32.onnx"
    _set_config(db, lambda c: c.update(models_dir=str(decoy)))
    _set_model(db, path=str(decoy / name))
    shutil.rmtree(work / "models")
    before = _snapshot(decoy)
    done = _mnbench(work, "run", "--resume", "1", "--db", "db.sqlite", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _snapshot(decoy) == before
    assert (work / "models" / name).is_file()


def test_stored_model_path_elsewhere_is_not_read(stored_run: Path, tmp_path: Path) -> None:
    """A generated model's stored path outside the current models directory is not used:
    the model is found (or made) in the directory the command names."""
    work = _workspace(stored_run, tmp_path)
    db = work / "db.sqlite"
    name = "mobilenet_v1_0.25_32.onnx"
    elsewhere = work / "elsewhere"
    shutil.move(work / "models", elsewhere)
    _set_model(db, path=str(elsewhere / name))
    done = _mnbench(work, "run", "--resume", "1", "--db", "db.sqlite", "--models-dir", "mine")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "mine" / name).is_file()


def test_counts() -> None:
    """The table's size per category (reported with the fixes)."""
    per: dict[str, int] = {}
    for case in CASES:
        per[case.category] = per.get(case.category, 0) + 1
    assert sum(per.values()) == len(CASES) >= 40
