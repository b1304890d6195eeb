"""A slowdown injector: an interpreter whose onnxruntime is a known fraction slower.

``make_slow_python(directory, fraction)`` writes ``DIR/sitecustomize.py`` and an executable
wrapper ``DIR/python-slow-<pct>`` that runs the given interpreter with ``DIR`` first on
``PYTHONPATH``. In that interpreter, as soon as ``onnxruntime`` is imported (an import hook,
so the runner still pins its CPUs before onnxruntime starts a thread),
``InferenceSession.run`` and ``run_with_iobinding`` are wrapped: each call is timed and then
followed by a busy wait of ``fraction`` × its own wall duration: a busy loop, not a sleep,
keeps the core as an inference would. On a loaded machine the loop can be preempted and
end late, so the slowdown seen is at least the fraction (benchmarks/regress_power.py
prints the ratio measured).

It is how regression testing is checked against a known answer: ``mnbench regress
--candidate DIR/python-slow-10`` must say ``slower``; ``python -m harness.measure.slowdown 0.1 DIR``
prints the wrapper's path.
"""

from __future__ import annotations

import shlex
import stat
import sys
from pathlib import Path

SITECUSTOMIZE = '''"""mnbench slowdown injector (harness/measure/slowdown.py): {fraction!r}
slower."""
import importlib.abc
import importlib.machinery
import sys
import time

_FRACTION = {fraction!r}


def _patch(module):
    session = module.InferenceSession
    for name in ("run", "run_with_iobinding"):
        original = getattr(session, name)

        def slow(self, *args, _original=original, **kwargs):
            clock = time.perf_counter_ns
            start = clock()
            result = _original(self, *args, **kwargs)
            end = clock()
            until = end + int((end - start) * _FRACTION)
            while clock() < until:
                pass
            return result

        setattr(session, name, slow)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "onnxruntime":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


sys.meta_path.insert(0, _Finder())
'''


def make_slow_python(directory: Path, fraction: float, python: str = sys.executable) -> Path:
    """Write the injector into ``directory``; return the wrapper interpreter's path."""
    if not 0 <= fraction <= 100:
        raise ValueError("fraction must be between 0 and 100")
    site = directory / f"slow-site-{fraction:g}"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(fraction=float(fraction)))
    wrapper = directory / f"python-slow-{100 * fraction:g}"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(site))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f'exec {shlex.quote(python)} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m harness.measure.slowdown FRACTION DIR", file=sys.stderr)
        return 2
    print(make_slow_python(Path(args[1]), float(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
