"""User-typed values checked in one place: finite, in range, sized.

Every verb's parser takes its numbers through these ``argparse`` ``type=`` helpers (or calls
the plain checks for values that arrive another way: a TOML field, a URL parameter, an
environment variable), so a bad value is refused as one line before any run, file or
process exists. Limits that guard memory or disk name the figure and the flag that raises
them; the figures are module constants so tests and the docs share them.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mobilenet.errors import UserError

T = TypeVar("T")
INT64_MAX = 2**63 - 1
MAX_THREADS = 1024
MAX_TRIALS = 1_000_000
MAX_PLAN_ITEMS = 100_000
"""Measurements one run may plan (models x thread counts x trials); ``--max-plan`` raises it."""
MAX_TIME_S = 86_400.0
"""A day: the ceiling of every duration flag (--timeout, --min-time, --max-time)."""
MAX_TEXT_CHARS = 200
"""The longest run label or run reference accepted."""


def quoted(text: str, limit: int = 60) -> str:
    """``repr`` of a user's value, shortened so an error stays one readable line."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


def finite_float(
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
) -> float:
    """``value`` when finite and within (low, high] (``low_open=False``: [low, high])."""
    if not math.isfinite(value):
        raise UserError(f"{name} {value!r} is not a finite number; give a plain number")
    if low is not None and (value <= low if low_open else value < low):
        relation = "greater than" if low_open else "at least"
        raise UserError(f"{name} {value:g} is out of range: it must be {relation} {low:g}")
    if high is not None and value > high:
        raise UserError(f"{name} {value:g} is out of range: it must be at most {high:g}")
    return value


def bounded_int(name: str, value: int, low: int, high: int) -> int:
    """``value`` when ``low <= value <= high``."""
    if value < low:
        raise UserError(f"{name} {value} is out of range: it must be at least {low}")
    if value > high:
        raise UserError(f"{name} {quoted(str(value), 24)} is out of range: give {low} to {high}")
    return value


def _parse_float(flag: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} {quoted(text)} is not a number") from None


def _parse_int(flag: str, text: str) -> int:
    stripped = text.strip()
    if len(stripped) > 24 or not re.fullmatch(r"[+-]?\d+", stripped):
        raise argparse.ArgumentTypeError(f"{flag} {quoted(text)} is not a whole number")
    return int(stripped)


def float_arg(
    flag: str,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    low_open: bool = True,
) -> Callable[[str], float]:
    """An argparse ``type=``: a finite float in range (default: greater than 0)."""

    def parse(text: str) -> float:
        value = _parse_float(flag, text)
        try:
            return finite_float(flag, value, low=low, high=high, low_open=low_open)
        except UserError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


def int_arg(flag: str, low: int = 1, high: int = INT64_MAX) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        value = _parse_int(flag, text)
        try:
            return bounded_int(flag, value, low, high)
        except UserError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


def run_id_arg(flag: str) -> Callable[[str], str]:
    """A run reference: a label, 'latest', 'all' or an id that fits SQLite's integers."""

    def parse(text: str) -> str:
        stripped = text.strip()
        if stripped.isdigit() and int(stripped) > INT64_MAX:
            raise argparse.ArgumentTypeError(
                f"{flag} {quoted(stripped, 24)} is not a run id (too large); "
                "`mnbench results --list` lists the runs"
            )
        if len(text) > MAX_TEXT_CHARS:
            raise argparse.ArgumentTypeError(f"{flag} is longer than {MAX_TEXT_CHARS} characters")
        return text

    return parse


def label_arg(text: str) -> str:
    """A run label: one line of printable text, at most ``MAX_TEXT_CHARS`` characters."""
    if len(text) > MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(f"--label is longer than {MAX_TEXT_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError("--label holds control characters; give one line of text")
    if text.strip().isdigit() or text.strip().lower() in ("latest", "all"):
        raise argparse.ArgumentTypeError(
            f"--label {quoted(text)} would read as a run id; give a label with a letter in it"
        )
    return text


def note(text: str) -> None:
    """Tell the user about an input that was taken other than as typed (one stderr line)."""
    print(f"mnbench: note: {text}", file=sys.stderr)


def distinct(values: Sequence[T] | None, flag: str) -> list[T] | None:
    """``values`` without repeats, in order, saying so when some were dropped."""
    if values is None:
        return None
    kept = list(dict.fromkeys(values))
    if len(kept) < len(values):
        note(f"{flag} repeats a value; each is measured once")
    return kept


def check_plan_size(models: int, threads: Sequence[int] | None, trials: int, limit: int) -> int:
    """Refuse a plan of more measurements than ``limit`` before any of it is made; its size.

    Without ``threads`` (the device's core count is used) one thread count is assumed."""
    size = models * max(1, len(threads or ())) * trials
    if size > limit:
        raise UserError(
            f"the plan holds {size:,} measurements ({models} models x "
            f"{max(1, len(threads or ()))} thread counts x {trials} trials), over the limit "
            f"of {limit:,}; lower --trials or raise the limit with --max-plan {size}"
        )
    return size


def creatable_dir(path: Path, what: str) -> Path:
    """Refuse ``path`` when it cannot become a directory, before anything is written;
    ``what`` names it in the message (a flag such as ``--models-dir``)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"lies under {probe}, which is not a directory"
        raise UserError(f"{what} {path} {where}; give a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" ({probe} is not writable)"
        raise UserError(f"{what} {path} is not writable{where}; give a writable directory")
    return path
