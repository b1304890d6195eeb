"""Plain-text tables for the terminal, and users' text escaped for each medium.

Text from a database or a file (labels, device and model names) may hold control
characters or markup; ``terminal_safe`` shows control characters as escapes (``\\x1b``) so
printing a table can never move the cursor, change colours or retitle the terminal, and
``markdown_text`` makes text inert in markdown (HTML escaping lives with the HTML report).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every C0/C1 control character (ESC, CR, newline, ...) as an escape."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def json_ready(value: object) -> object:
    """``value`` with every non-finite float as None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def json_text(value: object, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON (``allow_nan=False``) of ``value``, non-finite numbers written as null."""
    return json.dumps(
        json_ready(value), indent=indent, allow_nan=False, default=str, sort_keys=sort_keys
    )


_MARKUP = re.compile(r"([\\`*_\[\]<>|~])")


def markdown_text(text: object) -> str:
    """Users' text (labels, names) as inert markdown: one line, every markup character
    escaped, so it cannot add rows, links, images or HTML to a summary or a table."""
    return _MARKUP.sub(r"\\\1", _CONTROL.sub(" ", str(text))).strip()


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.1f}"
        if magnitude >= 10:
            return f"{value:.2f}"
        if magnitude >= 1:
            return f"{value:.3f}"
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return terminal_safe(str(value))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Text columns left-aligned, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        if rows
        else False
        for i in range(len(headers))
    ]
    widths = [
        max([len(terminal_safe(h))] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        pairs = enumerate(zip(values, widths, strict=True))
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in pairs).rstrip()

    out = [line([terminal_safe(h) for h in headers]), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)
