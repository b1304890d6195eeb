"""Runtime environments: isolated virtual environments with one onnxruntime release each.

``mnbench runtime add onnxruntime==1.30.0`` makes ``<cache>/runtimes/onnxruntime-1.30.0``
(cache = ``$MNBENCH_CACHE`` or ``~/.cache/mnbench``) with that release and numpy, installed
by pip from the package registry. An environment is complete only when its marker file
exists (written last); one whose install broke half-way has no marker and is rebuilt.
The local device runs the runner with the environment's Python; on a board a runtime is the
path of an interpreter there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devices.transport import Transport
from mobilenet.errors import UserError

MARKER = ".mnbench-runtime.json"
SPEC_RE = re.compile(r"^onnxruntime==(\d+(?:\.\d+){1,3}(?:(?:rc|a|b|\.post|\.dev)\d+)?)$")
PIP_TIMEOUT_S = 900.0


def cache_root() -> Path:
    """mnbench's cache: ``$MNBENCH_CACHE``, else ``$XDG_CACHE_HOME/mnbench`` or
    ``~/.cache/mnbench`` (runtime environments, the agent's zipapps)."""
    return Path(
        os.environ.get("MNBENCH_CACHE")
        or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mnbench"
        )
    )


def cache_dir() -> Path:
    """Where runtime environments live; a cache path that is a file (or lies under one) is
    a one-line error naming the variable to fix."""
    configured = os.environ.get("MNBENCH_CACHE")
    root = cache_root()
    for path in (root / "runtimes", *(root / "runtimes").parents):
        if path.exists():
            if not path.is_dir():
                variable = "MNBENCH_CACHE" if configured else "XDG_CACHE_HOME or HOME"
                raise UserError(
                    f"the runtime cache {root / 'runtimes'} cannot be a directory: {path} is "
                    f"a file; point {variable} at a directory"
                )
            break
    return root / "runtimes"


@dataclass(frozen=True)
class Runtime:
    spec: str  # onnxruntime==X.Y.Z
    version: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def complete(self) -> bool:
        return (self.path / MARKER).is_file() and self.python.exists()


def parse_spec(spec: str) -> str:
    """The version of an ``onnxruntime==X.Y.Z`` spec, or a one-line error."""
    match = SPEC_RE.match(spec.strip())
    if not match:
        raise UserError(
            f"runtime {spec!r} is not of the form onnxruntime==X.Y.Z, e.g. onnxruntime==1.30.0"
        )
    return match.group(1)


def runtime_for(spec: str) -> Runtime:
    version = parse_spec(spec)
    return Runtime(f"onnxruntime=={version}", version, cache_dir() / f"onnxruntime-{version}")


def list_runtimes() -> list[Runtime]:
    root = cache_dir()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("onnxruntime-*")):
        version = path.name.removeprefix("onnxruntime-")
        found.append(Runtime(f"onnxruntime=={version}", version, path))
    return found


def _pip_error(stderr: str, spec: str) -> str:
    text = stderr.strip()
    if "No matching distribution" in text or "Could not find a version" in text:
        return (
            f"{spec} is not in the package registry for Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}; `pip index versions "
            "onnxruntime` lists the releases"
        )
    if any(
        s in text
        for s in (
            "NewConnectionError",
            "Temporary failure in name resolution",
            "Network is unreachable",
            "Max retries exceeded",
        )
    ):
        return (
            f"cannot reach the package registry to install {spec}; check the network "
            "or a pip index configuration, then run the command again"
        )
    last = (text.splitlines() or ["pip failed"])[-1]
    return f"installing {spec} failed: {last[:200]}"


def numpy_requirement(version: str) -> str:
    """onnxruntime before 1.19 was built against numpy 1.x and fails to import with numpy 2."""
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    return "numpy<2" if parts < (1, 19) else "numpy"


def ensure_runtime(spec: str, python: str | None = None) -> Runtime:
    """The environment for ``spec``, created (or rebuilt if broken) when needed."""
    runtime = runtime_for(spec)
    if runtime.complete:
        return runtime
    root = runtime.path.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the runtime cache {root} ({exc.strerror}); point MNBENCH_CACHE at "
            "a writable directory"
        ) from None
    if runtime.path.exists():
        shutil.rmtree(runtime.path)  # a half-built environment: start again
    build = Path(tempfile.mkdtemp(prefix=f".{runtime.path.name}.", dir=root))
    try:
        subprocess.run(
            [python or sys.executable, "-m", "venv", str(build)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        pip = [
            str(build / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            runtime.spec,
            numpy_requirement(runtime.version),
        ]
        done = subprocess.run(
            pip, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise UserError(_pip_error(done.stderr, runtime.spec))
        check = subprocess.run(
            [
                str(build / "bin" / "python"),
                "-c",
                "import json, numpy, onnxruntime; print(json.dumps({'onnxruntime': "
                "onnxruntime.__version__, 'numpy': numpy.__version__}))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check.returncode != 0:
            tail = (check.stderr.strip().splitlines() or ["import failed"])[-1]
            raise UserError(f"{runtime.spec} installed but does not import: {tail[:200]}")
        versions = json.loads(check.stdout)
        (build / MARKER).write_text(json.dumps({"spec": runtime.spec, **versions}))
        # A venv's scripts carry its path: rebuild in place by renaming before first use.
        os.replace(build, runtime.path)
        _fix_venv_paths(runtime.path, build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return runtime


def _fix_venv_paths(path: Path, old: Path) -> None:
    """Point the moved venv's scripts and config at its final location."""
    for file in [path / "pyvenv.cfg", *(path / "bin").iterdir()]:
        if not file.is_file() or file.is_symlink():
            continue
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            continue
        if str(old) in text:
            file.write_text(text.replace(str(old), str(path)))


def remove_runtime(spec: str) -> Runtime:
    runtime = runtime_for(spec)
    if not runtime.path.exists():
        raise UserError(f"{runtime.spec} is not installed; `mnbench runtime list` shows what is")
    shutil.rmtree(runtime.path)
    return runtime


def installed_versions(runtime: Runtime) -> dict[str, str]:
    try:
        return dict(json.loads((runtime.path / MARKER).read_text()))
    except (OSError, ValueError):
        return {}


def remote_runtime_python(
    transport: Transport, base_python: list[str], spec: str, install: bool
) -> str:
    """The interpreter of ``spec``'s environment on a board, created there when ``install``.

    The environment is ``WORKDIR/runtimes/onnxruntime-X.Y.Z`` in the device's work directory,
    made with the board's own Python (``-m venv``) and pip; complete once its marker exists.
    """
    version = parse_spec(spec)
    path = f"{transport.workdir.rstrip('/')}/runtimes/onnxruntime-{version}"
    python = f"{path}/bin/python"
    ready = transport.run(["test", "-f", f"{path}/{MARKER}"], timeout_s=60, check=False).rc == 0
    if ready:
        return python
    if not install:
        raise UserError(
            f"{spec} is not installed on {transport.name}; add --install to create "
            f"{path} there with pip, or give the path of an interpreter that has it"
        )
    script = (
        'rm -rf "$1" && "$2" -m venv "$1" && "$1/bin/python" -m pip install --quiet '
        '--disable-pip-version-check "$3" "$4" && "$1/bin/python" -c "import onnxruntime" '
        '&& echo "$3" > "$1/$5"'
    )
    done = transport.run(
        [
            "sh",
            "-c",
            script,
            "sh",
            path,
            base_python[0],
            f"onnxruntime=={version}",
            numpy_requirement(version),
            MARKER,
        ],
        timeout_s=PIP_TIMEOUT_S,
        check=False,
    )
    if done.rc != 0:
        raise UserError(
            _pip_error(done.stderr + done.stdout, spec).replace(
                "installing", f"installing on {transport.name}", 1
            )
        )
    return python
