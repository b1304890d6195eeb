"""How far to trust the report's numbers: stability per run, unreliable cells and why, guards.

Owns ``Trust`` (computed once from the results frame) and its two renderings: markdown lines
for ``summary.md`` and an HTML section for the top of ``report.html``. What it reads are
the results frame's trust columns (``results.reliability``):

* the **stability figure** of each run: the spread (SD of logs) of the reference workload
  every trial times before it loads its model (``reference_ms`` of the runner), with the
  slowest/fastest ratio. It measures the device, not the models: a run whose reference
  moved by 10 % cannot have absolute numbers better than 10 %;
* the **unreliable cells**: every cell with a flag, with the reason in words;
* the **guards**: the hottest zone, the largest other load, the cool-down waits, the
  governor (pinned or not) and, when not pinned, the exact command that would pin it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from html import escape

import pandas as pd

from mobilenet.table import markdown_text
from results.reliability import stability


@dataclass(frozen=True)
class RunStability:
    run_id: int
    trials: int
    median_ms: float
    spread: float
    range_ratio: float


@dataclass(frozen=True)
class Unreliable:
    run_id: int
    cell: str
    reasons: str


@dataclass(frozen=True)
class Trust:
    stability: tuple[RunStability, ...]
    unreliable: tuple[Unreliable, ...]
    cells: int
    device_states: tuple[tuple[int, str], ...]
    pin_commands: tuple[tuple[int, str], ...]
    hottest_c: float | None
    other_load: float | None
    cooldown_s: float | None


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _floats(series: pd.Series) -> list[float]:
    return [float(v) for v in series if isinstance(v, (int, float)) and math.isfinite(v)]


def _config(row: Mapping[Hashable, object]) -> str:
    threads = row.get("threads")
    return f"{row.get('name')} ×{threads}" if threads is not None else str(row.get("name"))


def trust_of(results: pd.DataFrame) -> Trust:
    runs: list[RunStability] = []
    unreliable: list[Unreliable] = []
    states: dict[int, str] = {}
    commands: dict[int, str] = {}
    if results.empty or "run_id" not in results.columns:
        return Trust((), (), 0, (), (), None, None, None)
    for key, part in results.groupby("run_id", sort=True):
        run_id = int(str(key))
        references: list[float] = []
        for values in part.get("trial_reference_ms", pd.Series(dtype=object)):
            if isinstance(values, list):
                references.extend(float(v) for v in values)
        figure = stability(references)
        if figure is not None:
            runs.append(
                RunStability(
                    run_id,
                    int(figure["trials"]),
                    float(figure["median_ms"]),
                    float(figure["spread"]),
                    float(figure["range_ratio"]),
                )
            )
        for row in part.to_dict("records"):
            reasons = _text(row.get("unreliable"))
            if _text(row.get("flags")) and reasons:
                unreliable.append(Unreliable(run_id, _config(row), reasons))
            state = _text(row.get("device_state"))
            if state and run_id not in states:
                states[run_id] = state
            command = _text(row.get("pin_command"))
            if command and run_id not in commands:
                commands[run_id] = command
    hottest = _floats(results.get("hottest_c", pd.Series(dtype=float)))
    other = _floats(results.get("other_load", pd.Series(dtype=float)))
    waits = _floats(results.get("cooldown_s", pd.Series(dtype=float)))
    return Trust(
        tuple(runs),
        tuple(unreliable),
        len(results),
        tuple(sorted(states.items())),
        tuple(sorted(commands.items())),
        max(hottest) if hottest else None,
        max(other) if other else None,
        sum(waits) if waits else None,
    )


def _stability_text(item: RunStability) -> str:
    return (
        f"run {item.run_id}: reference workload {item.median_ms:.3g} ms over {item.trials} "
        f"trials, spread {item.spread:.1%} (slowest/fastest {item.range_ratio:.2f}×)"
    )


def _guard_text(trust: Trust) -> str:
    parts: list[str] = []
    if trust.hottest_c is not None:
        parts.append(f"hottest zone {trust.hottest_c:.1f} °C")
    if trust.other_load is not None:
        parts.append(f"largest other load {trust.other_load:.0%} of the measured CPUs")
    if trust.cooldown_s:
        parts.append(f"cool-down waits {trust.cooldown_s:.0f} s in all")
    return "; ".join(parts)


def markdown_lines(trust: Trust) -> list[str]:
    """The trust lines of ``summary.md`` (empty list: nothing to say)."""
    lines: list[str] = []
    for item in trust.stability:
        lines.append(f"- Stability: {markdown_text(_stability_text(item))}.")
    guards = _guard_text(trust)
    if guards:
        lines.append(f"- Guards: {markdown_text(guards)}.")
    for run_id, state in trust.device_states:
        lines.append(f"- Device (run {run_id}): {markdown_text(state)}.")
    for run_id, command in trust.pin_commands:
        lines.append(f"- To pin the frequencies (run {run_id}; root): `{command}`")
    if trust.cells:
        lines.append(
            f"- Unreliable: {len(trust.unreliable)} of {trust.cells} results"
            + (":" if trust.unreliable else ".")
        )
        for cell in trust.unreliable:
            lines.append(
                f"  - run {cell.run_id} {markdown_text(cell.cell)}: {markdown_text(cell.reasons)}"
            )
    return [*lines, ""] if lines else []


def html_section(trust: Trust) -> str:
    """The trust section at the top of ``report.html``."""
    items: list[str] = []
    for item in trust.stability:
        items.append(f"<li><strong>Stability:</strong> {escape(_stability_text(item))}.</li>")
    if not trust.stability:
        items.append(
            "<li><strong>Stability:</strong> no reference workload was recorded (fewer than 3 "
            "trials, or runs made before it existed).</li>"
        )
    guards = _guard_text(trust)
    if guards:
        items.append(f"<li><strong>Guards:</strong> {escape(guards)}.</li>")
    for run_id, state in trust.device_states:
        items.append(f"<li><strong>Device (run {run_id}):</strong> {escape(state)}.</li>")
    for run_id, command in trust.pin_commands:
        items.append(
            f"<li><strong>To pin the frequencies</strong> (run {run_id}; needs root, mnbench "
            f"never does it): <code>{escape(command)}</code></li>"
        )
    if trust.unreliable:
        rows = "".join(
            f"<li>run {cell.run_id} {escape(cell.cell)}: {escape(cell.reasons)}</li>"
            for cell in trust.unreliable
        )
        items.append(
            f"<li><strong>Unreliable:</strong> {len(trust.unreliable)} of {trust.cells} "
            f"results<ul>{rows}</ul></li>"
        )
    elif trust.cells:
        items.append(
            f"<li><strong>Unreliable:</strong> none of {trust.cells} results is flagged.</li>"
        )
    return f'<div class="trust" id="trust"><ul>{"".join(items)}</ul></div>'
