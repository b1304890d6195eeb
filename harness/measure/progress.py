"""Progress of several devices measured at once: one line per device with its ETA.

Owns ``DeviceLines``. On a terminal the block of device lines is redrawn in place (ANSI
cursor movement, each line cut to the terminal's width so none wraps), messages print above
it, and the ETAs count down between events (``tick``). Anywhere else (a CI log, a pipe, a
file) nothing is redrawn: each event is one line of its own, as a log wants it. The text of
a line is the same in both modes. Thread-safe: device workers report from their threads.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from mobilenet.table import terminal_safe

BAR_WIDTH = 20
TICK_S = 1.0
"""How often a live display redraws when nothing happens (the ETAs count down)."""


def clock_text(seconds: float) -> str:
    """m:ss (or --:-- when not known yet)."""
    if not math.isfinite(seconds):
        return "--:--"
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


@dataclass
class _Device:
    name: str
    done: int = 0
    total: int = 0
    measured: int = 0
    """Items this worker measured (the ETA's rate; items done by others do not count)."""
    started_s: float | None = None
    event_s: float | None = None
    eta_s: float = math.nan
    what: str = "waiting"
    final: str | None = None


class DeviceLines:
    """One line per device; live (redrawn in place) on a terminal, one line per event
    elsewhere."""

    def __init__(
        self,
        stream: TextIO,
        devices: Sequence[str],
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.live = _isatty(stream) if live is None else live
        self.clock = clock
        self._devices = {name: _Device(name) for name in devices}
        self._width = max((len(name) for name in devices), default=0)
        self._lock = threading.Lock()
        self._drawn = 0
        self._drawn_s = -math.inf

    # -- events ----------------------------------------------------------------------------

    def start(self, device: str) -> None:
        """The device's worker starts measuring (its ETA's clock starts)."""
        with self._lock:
            state = self._devices[device]
            state.started_s = self.clock()
            state.what = "starting"
            if self.live:
                self._draw()

    def item(self, device: str, done: int, total: int, what: str) -> None:
        """An item was committed: ``done`` of ``total`` for the device, ``what`` it was."""
        with self._lock:
            state = self._devices[device]
            now = self.clock()
            state.measured += 1
            state.done, state.total, state.what = done, total, what
            started = state.started_s if state.started_s is not None else now
            state.eta_s = (now - started) / state.measured * max(0, total - done)
            state.event_s = now
            line = self._line(state, now)
            if self.live:
                self._draw()
            else:
                self._write(line)

    def finish(self, device: str, summary: str) -> None:
        """The device's worker stopped; ``summary`` says what it did."""
        with self._lock:
            state = self._devices[device]
            state.final = summary
            if self.live:
                self._draw()
            else:
                self._write(terminal_safe(f"{device}: {summary}"))

    def say(self, line: str) -> None:
        """A message of its own (above the live block)."""
        with self._lock:
            if self.live and self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
                self._drawn = 0
            self._write(terminal_safe(line))
            if self.live:
                self._draw()

    def tick(self) -> None:
        """Redraw a live display whose last drawing is older than ``TICK_S``."""
        with self._lock:
            if self.live and self.clock() - self._drawn_s >= TICK_S:
                self._draw()

    # -- drawing ---------------------------------------------------------------------------

    def _line(self, state: _Device, now: float) -> str:
        name = state.name.ljust(self._width)
        if state.total:
            filled = BAR_WIDTH * state.done // state.total
            count = f"{state.done}/{state.total}"
        else:
            filled, count = 0, "-/-"
        bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"
        if state.final is not None:
            return terminal_safe(f"{name} {bar} {count}  {state.final}")
        eta = state.eta_s
        if self.live and state.event_s is not None and math.isfinite(eta):
            eta -= now - state.event_s  # counting down between events
        return terminal_safe(f"{name} {bar} {count} ETA {clock_text(eta)}  {state.what}")

    def _draw(self) -> None:
        now = self.clock()
        columns = _columns(self.stream)
        parts = [f"\x1b[{self._drawn}F"] if self._drawn else []
        for state in self._devices.values():
            parts.append("\x1b[2K" + self._line(state, now)[: columns - 1] + "\n")
        self.stream.write("".join(parts))
        self.stream.flush()
        self._drawn = len(self._devices)
        self._drawn_s = now

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty()) and os.environ.get("TERM") != "dumb"


def _columns(stream: TextIO) -> int:
    try:
        return max(20, os.get_terminal_size(stream.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return 80
