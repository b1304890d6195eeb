"""Comparison of two stored runs: ratio of medians with a bootstrap CI, Mann–Whitney U on
per-trial medians, Benjamini–Hochberg across the grid, and a verdict per cell.

Design after asv (Mann–Whitney plus a relative factor; docs/measurement.md) and
Criterion.rs / conbench (a noise threshold on the CI of the change): a cell is

- ``slower`` when the adjusted p-value is below ``alpha`` and the whole 95 % CI of the ratio
  candidate/baseline lies above ``1 + threshold``;
- ``faster``, the mirror image: significant and the whole CI below ``1 / (1 + threshold)``;
- ``unchanged`` when the whole CI lies within ``[1 / (1 + threshold), 1 + threshold]``;
- ``inconclusive`` otherwise: too few trials to reach significance, or a CI that straddles
  a bound — unstable measurements land here because their between-trial spread widens the
  CI; cells whose per-trial medians vary by more than 10 % are also noted as unstable.

The CI is a two-level bootstrap: trials are resampled (between-process variance is real
variance, pyperf's lesson), and within each drawn trial its median is taken from a
resample of its own samples. Per-trial medians feed the Mann–Whitney test, so the unit of
replication is the process, not the inference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from results.errors import ResultsError

Verdict = Literal["slower", "faster", "unchanged", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("slower", "faster", "unchanged", "inconclusive")
DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
UNSTABLE_TRIAL_CV = 0.10
"""Per-trial medians varying more than this (CV) on either side get an "unstable" note."""


@dataclass(frozen=True)
class CellComparison:
    name: str
    sha256: str
    config_key: str
    threads: int | None
    baseline_ms: float
    candidate_ms: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    baseline_trials: int
    candidate_trials: int
    verdict: Verdict
    note: str = ""
    design: str = "trials"  # "pairs": interleaved process pairs (results/paired.py)
    within_sd: float | None = None  # pairs: log-ratio sd of a burst pair inside a pair
    between_sd: float | None = None  # pairs: log-ratio sd between process pairs
    confidence: float = 0.95  # of the CI (pairs: the level spent at the deciding look)


@dataclass(frozen=True)
class FailedCell:
    name: str
    config_key: str
    side: Literal["baseline", "candidate", "both"]
    reason: str


@dataclass(frozen=True)
class Comparison:
    baseline_run: int
    candidate_run: int
    threshold: float
    cells: tuple[CellComparison, ...]
    failed: tuple[FailedCell, ...] = ()
    missing: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def geometric_mean_ratio(self) -> float | None:
        ratios = [c.ratio for c in self.cells if c.ratio > 0]
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None

    def count(self, verdict: Verdict) -> int:
        return sum(1 for c in self.cells if c.verdict == verdict)

    @property
    def failed_only_in_candidate(self) -> tuple[FailedCell, ...]:
        return tuple(f for f in self.failed if f.side == "candidate")


def guard_note(rows: pd.DataFrame, unit: str) -> tuple[str, Counter[str]]:
    """How many of a cell's rounds (its ok measurements: trials, or process pairs) the
    device guards flagged (``results.guards``), as a note for the verdict: ``busy in 2 of
    6 pairs``. The verdict's statistics are not changed; the note says what to doubt."""
    counts: Counter[str] = Counter()
    ok = rows[rows["status"] == "ok"] if len(rows) else rows
    if "guard_flags" not in ok.columns:
        return "", counts
    for flags in ok["guard_flags"]:
        for flag in str(flags or "").split(","):
            if flag:
                counts[flag] += 1
    parts = [f"{flag} in {n} of {len(ok)} {unit}" for flag, n in counts.items()]
    return ", ".join(parts), counts


def _flagged_warning(flagged: Mapping[str, Counter[str]]) -> list[str]:
    """One warning naming the cells whose verdicts rest on flagged rounds."""
    if not flagged:
        return []
    total: Counter[str] = Counter()
    for counts in flagged.values():
        total.update(counts)
    what = ", ".join(f"{flag} {n}" for flag, n in total.items())
    return [
        f"rounds flagged by the device guards in {len(flagged)} cell(s) ({what}: "
        f"{', '.join(sorted(flagged))}); their verdicts may reflect the device, not the "
        "runtimes: measure them again on a quiet device"
    ]


def _trials(frame: pd.DataFrame) -> list[np.ndarray]:
    """Each ok trial's samples (or its reported median when there are no samples)."""
    out: list[np.ndarray] = []
    for samples, p50 in zip(frame["samples_ms"], frame["p50_ms"], strict=True):
        values: list[float] = list(samples) if isinstance(samples, list) else []
        if values:
            out.append(np.asarray(values, dtype=np.float64))
        elif isinstance(p50, (int, float)) and math.isfinite(p50):
            out.append(np.asarray([float(p50)], dtype=np.float64))
    return out


def _trial_cv(trials: Sequence[np.ndarray]) -> float:
    medians = np.array([np.median(t) for t in trials])
    if len(medians) < 2 or medians.mean() <= 0:
        return 0.0
    return float(medians.std(ddof=1) / medians.mean())


def bootstrap_ratio_ci(
    baseline: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(ratio of medians, CI low, CI high) by a two-level bootstrap over trials and samples."""
    rng = np.random.default_rng(seed)

    def replicate_medians(trials: Sequence[np.ndarray]) -> np.ndarray:
        # per trial, `resamples` bootstrap medians of its own samples
        per_trial = np.empty((len(trials), resamples))
        for i, samples in enumerate(trials):
            if len(samples) == 1:
                per_trial[i] = samples[0]
                continue
            idx = rng.integers(0, len(samples), size=(resamples, len(samples)))
            per_trial[i] = np.median(samples[idx], axis=1)
        picks = rng.integers(0, len(trials), size=(resamples, len(trials)))
        chosen = per_trial[picks, np.arange(resamples)[:, None]]
        return np.median(chosen, axis=1)

    point = float(np.median(np.concatenate(candidate)) / np.median(np.concatenate(baseline)))
    ratios = replicate_medians(candidate) / replicate_medians(baseline)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return point, float(low), float(high)


def mann_whitney_p(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Two-sided Mann–Whitney U p-value on per-trial medians (1.0 when it cannot be run)."""
    if len(baseline) < 2 or len(candidate) < 2:
        return 1.0
    if len(set(baseline) | set(candidate)) == 1:
        return 1.0
    return float(stats.mannwhitneyu(baseline, candidate, alternative="two-sided").pvalue)


def verdict_for(
    ci_low: float, ci_high: float, p_adjusted: float, threshold: float, alpha: float = DEFAULT_ALPHA
) -> Verdict:
    upper, lower = 1 + threshold, 1 / (1 + threshold)
    if p_adjusted < alpha and ci_low > upper:
        return "slower"
    if p_adjusted < alpha and ci_high < lower:
        return "faster"
    if lower <= ci_low and ci_high <= upper:
        return "unchanged"
    return "inconclusive"


def compare_frames(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    baseline_run: int,
    candidate_run: int,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    force: bool = False,
) -> Comparison:
    """Compare two measurements frames (``Store.measurements_frame``), cell by cell."""
    key_cols = ["sha256", "config_key"]
    base_cells = {k: g for k, g in baseline.groupby(key_cols)} if len(baseline) else {}
    cand_cells = {k: g for k, g in candidate.groupby(key_cols)} if len(candidate) else {}
    warnings: list[str] = []
    if not force:
        base_names = {(g["name"].iloc[0], k[1]): k[0] for k, g in base_cells.items()}
        for key, group in cand_cells.items():
            name = group["name"].iloc[0]
            other = base_names.get((name, key[1]))
            if other is not None and other != key[0]:
                raise ResultsError(
                    f"{name} has a different model file (sha256) in the two runs, so they "
                    "are not comparable; regenerate with the same version or pass --force"
                )
    else:
        # with --force, pair cells by model name when the hashes differ
        base_cells = {(g["name"].iloc[0], k[1]): g for k, g in base_cells.items()}
        cand_cells = {(g["name"].iloc[0], k[1]): g for k, g in cand_cells.items()}
        warnings.append("--force: cells are paired by model name, not by model file")

    if not set(base_cells) & set(cand_cells):
        by_model = _pair_by_model(base_cells, cand_cells, force)
        if by_model is not None:
            base_cells, cand_cells, note = by_model
            warnings.append(note)
    rows: list[dict[str, Any]] = []
    failed: list[FailedCell] = []
    missing: list[str] = []
    flagged: dict[str, Counter[str]] = {}
    for key in sorted(set(base_cells) | set(cand_cells)):
        b, c = base_cells.get(key), cand_cells.get(key)
        name = str((b if b is not None else c)["name"].iloc[0])  # type: ignore[index]
        if b is None or c is None:
            where = "candidate" if b is None else "baseline"
            missing.append(f"{name} {key[1]} only in the {where}")
            continue
        b_ok, c_ok = b[b["status"] == "ok"], c[c["status"] == "ok"]
        if len(b_ok) == 0 or len(c_ok) == 0:
            side: Literal["baseline", "candidate", "both"] = (
                "both"
                if len(b_ok) == len(c_ok) == 0
                else "candidate"
                if len(c_ok) == 0
                else "baseline"
            )
            failing = c if side == "candidate" else b
            reason = str(failing.loc[failing["status"] != "ok", "reason"].iloc[0])
            failed.append(FailedCell(name, str(key[1]), side, reason))
            continue
        b_trials, c_trials = _trials(b_ok), _trials(c_ok)
        ratio, low, high = bootstrap_ratio_ci(b_trials, c_trials)
        p = mann_whitney_p(
            [float(np.median(t)) for t in b_trials], [float(np.median(t)) for t in c_trials]
        )
        unstable = max(_trial_cv(b_trials), _trial_cv(c_trials)) > UNSTABLE_TRIAL_CV
        guarded, counts = guard_note(pd.concat([b_ok, c_ok]), "trials")
        if counts:
            flagged[name] = counts
        rows.append(
            {
                "name": name,
                "sha256": str(c_ok["sha256"].iloc[0]),
                "config_key": str(key[1]),
                "threads": int(c_ok["threads"].iloc[0]) if "threads" in c_ok else None,
                "baseline_ms": float(np.median(np.concatenate(b_trials))),
                "candidate_ms": float(np.median(np.concatenate(c_trials))),
                "ratio": ratio,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
                "baseline_trials": len(b_trials),
                "candidate_trials": len(c_trials),
                "note": ", ".join(
                    part for part in ("unstable trials" if unstable else "", guarded) if part
                ),
            }
        )
    if rows:
        p_values = [float(r["p_value"]) for r in rows]
        adjusted = stats.false_discovery_control(p_values, method="bh")
    else:
        adjusted = []
    cells = []
    for row, p_adj in zip(rows, adjusted, strict=True):
        verdict = verdict_for(
            float(row["ci_low"]),
            float(row["ci_high"]),
            float(p_adj),
            threshold,
            alpha,
        )
        cells.append(CellComparison(p_adjusted=float(p_adj), verdict=verdict, **row))
    return Comparison(
        baseline_run,
        candidate_run,
        threshold,
        tuple(cells),
        tuple(failed),
        tuple(missing),
        tuple(warnings + _flagged_warning(flagged)),
    )


def _pair_by_model(
    base_cells: dict[Any, pd.DataFrame], cand_cells: dict[Any, pd.DataFrame], force: bool
) -> tuple[dict[Any, pd.DataFrame], dict[Any, pd.DataFrame], str] | None:
    """Runs with no configuration in common (threads 2 vs 1, other --cpus): pair the cells
    by model when each model has one configuration in each run (None otherwise)."""
    index = 0  # the key part that names the model: sha256, or the name with --force

    def by_model(cells: dict[Any, pd.DataFrame]) -> dict[Any, pd.DataFrame] | None:
        out: dict[Any, pd.DataFrame] = {}
        for key, group in cells.items():
            if key[index] in out:
                return None
            out[key[index]] = group
        return out

    base, cand = by_model(base_cells), by_model(cand_cells)
    if not base or not cand or not set(base) & set(cand):
        return None
    differ = sorted(
        {f"{k[1]} vs {c[1]}" for k in base_cells for c in cand_cells if k[index] == c[index]}
    )
    note = "configurations differ (baseline vs candidate: " + "; ".join(differ[:3]) + ")"
    note += ": cells are paired by model"
    keyed_base = {(k, "by model"): g for k, g in base.items()}
    keyed_cand = {(k, "by model"): g for k, g in cand.items()}
    del force
    return keyed_base, keyed_cand, note


def compare_runs(
    store: object,
    baseline_run: int,
    candidate_run: int,
    threshold: float = DEFAULT_THRESHOLD,
    force: bool = False,
) -> Comparison:
    """Load both runs from a ``results.store.Store`` and compare them."""
    from results.store import Store

    assert isinstance(store, Store)
    base, cand = store.get_run(baseline_run), store.get_run(candidate_run)
    if base.device != cand.device and not force:
        raise ResultsError(
            f"run {baseline_run} is on {base.device} and run {candidate_run} on {cand.device}: "
            "runs from different devices are not comparable; pass --force to compare anyway"
        )
    if is_paired(base.config, cand.config):
        return paired_comparison(store, baseline_run, candidate_run, threshold)
    frame = store.measurements_frame([baseline_run, candidate_run])
    return compare_frames(
        frame[frame["run_id"] == baseline_run],
        frame[frame["run_id"] == candidate_run],
        baseline_run,
        candidate_run,
        threshold,
        force=force,
    )


def is_paired(baseline_config: Mapping[str, Any], candidate_config: Mapping[str, Any]) -> bool:
    """Both runs are the two sides of one interleaved ``mnbench regress`` (pairs design)."""
    token = baseline_config.get("pairing")
    return (
        bool(token)
        and token == candidate_config.get("pairing")
        and baseline_config.get("regress_role") == "baseline"
        and candidate_config.get("regress_role") == "candidate"
    )


def paired_log_ratios(
    baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], list[list[float]]]:
    """Per cell (sha256, config_key), per pair in order: the burst log ratios B/A."""
    from results.paired import Burst, burst_log_ratios

    grouped: dict[tuple[str, str], dict[int, list[Burst]]] = {}
    for row in [*baseline, *candidate]:
        cell = (str(row["model_sha256"]), str(row["config_key"]))
        grouped.setdefault(cell, {}).setdefault(int(row["pair"]), []).append(
            Burst(
                int(row["pair"]),
                int(row["position"]),
                row["side"],
                float(row["start_unix"] or 0.0),
                tuple(row["samples_ms"]),
            )
        )
    return {
        cell: [burst_log_ratios(pairs[k]) for k in sorted(pairs)] for cell, pairs in grouped.items()
    }


def paired_comparison(
    store: object, baseline_run: int, candidate_run: int, threshold: float = DEFAULT_THRESHOLD
) -> Comparison:
    """The paired, sequential analysis of an interleaved regress (results/paired.py),
    replayed from the stored bursts: the verdicts the run reached (at this threshold)."""
    from results.paired import DEFAULT_MAX_PAIRS, DEFAULT_MIN_PAIRS, replay
    from results.store import Store

    assert isinstance(store, Store)
    config = store.get_run(candidate_run).config
    alpha = float(config.get("alpha") or DEFAULT_ALPHA)
    max_pairs = int(config.get("max_pairs") or DEFAULT_MAX_PAIRS)
    min_pairs = int(config.get("min_pairs") or DEFAULT_MIN_PAIRS)
    ratios = paired_log_ratios(store.bursts(baseline_run), store.bursts(candidate_run))
    frame = store.measurements_frame([baseline_run, candidate_run])
    failed: list[FailedCell] = []
    names: dict[tuple[str, str], str] = {}
    threads: dict[tuple[str, str], int | None] = {}
    medians: dict[tuple[tuple[str, str], int], float] = {}
    guarded: dict[tuple[str, str], tuple[str, Counter[str]]] = {}
    for (sha, key), group in frame.groupby(["sha256", "config_key"]) if len(frame) else []:
        cell = (str(sha), str(key))
        names[cell] = str(group["name"].iloc[0])
        threads[cell] = int(group["threads"].iloc[0]) if "threads" in group else None
        bad = group[group["status"] != "ok"]
        if len(bad):
            sides = {int(r) for r in bad["run_id"]}
            side: Literal["baseline", "candidate", "both"] = (
                "both" if len(sides) == 2 else "candidate" if candidate_run in sides else "baseline"
            )
            failed.append(FailedCell(names[cell], cell[1], side, str(bad["reason"].iloc[0])))
            ratios.pop(cell, None)
            continue
        # Both sides store the pair's one guard record: count each pair once.
        guarded[cell] = guard_note(group[group["run_id"] == candidate_run], "pairs")
        for run_id in (baseline_run, candidate_run):
            ok = group[group["run_id"] == run_id]
            trials = _trials(ok)
            if trials:
                medians[(cell, run_id)] = float(np.median(np.concatenate(trials)))
    keys = {f"{sha}|{key}": (sha, key) for sha, key in ratios}
    analysis = replay(
        {k: ratios[cell] for k, cell in keys.items()}, threshold, alpha, max_pairs, min_pairs
    )
    cells: list[CellComparison] = []
    flagged: dict[str, Counter[str]] = {}
    for k, cell in sorted(keys.items(), key=lambda item: names.get(item[1], "")):
        state = analysis.cells[k]
        est = state.estimate
        if est is None:
            continue
        note = f"{est.pairs} pairs"
        if not state.decided:
            note += ", budget ran out" if len(state.pairs) < max_pairs else ", max pairs"
        text, counts = guarded.get(cell, ("", Counter()))
        if counts:
            note += f", {text}"
            flagged[names.get(cell, cell[0][:12])] = counts
        cells.append(
            CellComparison(
                name=names.get(cell, cell[0][:12]),
                sha256=cell[0],
                config_key=cell[1],
                threads=threads.get(cell),
                baseline_ms=medians.get((cell, baseline_run), math.nan),
                candidate_ms=medians.get((cell, candidate_run), math.nan),
                ratio=est.ratio,
                ci_low=est.ci_low,
                ci_high=est.ci_high,
                p_value=est.p_value,
                p_adjusted=state.p_adjusted,
                baseline_trials=est.pairs,
                candidate_trials=est.pairs,
                verdict=state.verdict,
                note=note,
                design="pairs",
                within_sd=est.within_sd,
                between_sd=est.between_sd,
                confidence=est.confidence,
            )
        )
    return Comparison(
        baseline_run,
        candidate_run,
        threshold,
        tuple(cells),
        tuple(failed),
        warnings=tuple(_flagged_warning(flagged)),
    )


def comparison_records(comparison: Comparison) -> list[Mapping[str, object]]:
    return [
        {
            "name": c.name,
            "threads": c.threads,
            "config": c.config_key,
            "baseline_ms": c.baseline_ms,
            "candidate_ms": c.candidate_ms,
            "ratio": c.ratio,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": c.p_value,
            "p_adjusted": c.p_adjusted,
            "baseline_trials": c.baseline_trials,
            "candidate_trials": c.candidate_trials,
            "verdict": c.verdict,
            "note": c.note,
            "design": c.design,
            "within_sd": c.within_sd,
            "between_sd": c.between_sd,
            "confidence": c.confidence,
        }
        for c in comparison.cells
    ]
