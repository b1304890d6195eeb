"""The paired analysis and the sequential rule (results/paired.py) on synthetic pairs, the
bursts table of the store, and a version-1 database upgrading with its data kept."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from results.paired import (
    Burst,
    SequentialAnalysis,
    burst_log_ratios,
    estimate,
    looks,
    replay,
    spent_alpha,
)
from results.store import MIGRATIONS, SCHEMA_VERSION, Store, config_key


def synthetic_pairs(
    rng: np.random.Generator, log_ratio: float, between_sd: float, within_sd: float, m: int
) -> list[float]:
    """One process pair: its own offset, then m burst log ratios around it."""
    offset = log_ratio + rng.normal(0, between_sd)
    return list(offset + rng.normal(0, within_sd, size=m))


def test_burst_ratios_pair_the_jth_burst_of_each_side() -> None:
    bursts = [
        Burst(1, 0, "B", 0.0, (2.0, 2.2, 2.1)),
        Burst(1, 1, "A", 0.0, (1.0, 1.0, 1.1)),
        Burst(1, 2, "B", 0.0, (4.0,)),
        Burst(1, 3, "A", 0.0, (1.0,)),
    ]
    assert burst_log_ratios(bursts) == pytest.approx([math.log(2.1), math.log(4.0)])


def test_estimate_recovers_ratio_and_both_variance_components() -> None:
    rng = np.random.default_rng(0)
    pairs = [synthetic_pairs(rng, math.log(1.1), 0.03, 0.05, 16) for _ in range(400)]
    est = estimate(pairs)
    assert est.pairs == 400
    assert est.ci_low < 1.1 < est.ci_high and est.ci_high - est.ci_low < 0.02
    assert est.within_sd == pytest.approx(0.05, rel=0.05)
    assert est.between_sd == pytest.approx(0.03, rel=0.15)
    assert est.p_value < 1e-10


def test_looks_and_spending_sum_to_alpha() -> None:
    points = looks(30)
    assert points[:4] == [3, 4, 5, 6] and points[-1] == 30
    assert spent_alpha(1.0, 0.05) == pytest.approx(0.05)
    increments = [
        spent_alpha(b / 30) - spent_alpha(a / 30)
        for a, b in zip([0, *points], points[:], strict=False)
    ]
    assert sum(increments) == pytest.approx(0.05) and all(i > 0 for i in increments)


def _run(analysis: SequentialAnalysis, make: object, cells: list[str]) -> None:
    assert callable(make)
    while analysis.undecided():
        for cell in analysis.undecided():
            analysis.add(cell, make(cell))
        analysis.look()


def test_repeated_looks_keep_the_false_alarm_rate_nominal() -> None:
    """A/A with no threshold (so only significance decides): looking after every pair at
    a fixed 95 % would call many A/A cells different; the spent alpha keeps it <= 5 %."""
    rng = np.random.default_rng(1)
    cells = [str(i) for i in range(800)]
    data = {c: [synthetic_pairs(rng, 0.0, 0.05, 0.05, 8) for _ in range(30)] for c in cells}
    alarms = 0
    naive_alarms = 0
    for cell in cells:  # one cell per analysis: no BH across them, the rule alone
        analysis = replay({cell: data[cell]}, threshold=0.0, max_pairs=30)
        alarms += analysis.cells[cell].verdict in ("slower", "faster")
        for n in looks(30):
            est = estimate(data[cell][:n], 0.95)
            if est.ci_low > 1 or est.ci_high < 1:
                naive_alarms += 1
                break
    rate, naive = alarms / len(cells), naive_alarms / len(cells)
    assert naive > 0.10  # the problem is real: repeated looks at 95 % inflate false alarms
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / len(cells))


def test_aa_unchanged_and_a_slowdown_slower_before_the_cap() -> None:
    rng = np.random.default_rng(2)
    analysis = SequentialAnalysis(["aa", "slow", "fast"], threshold=0.05, max_pairs=30)
    shift = {"aa": 0.0, "slow": math.log(1.10), "fast": math.log(1 / 1.10)}
    _run(analysis, lambda c: synthetic_pairs(rng, shift[c], 0.01, 0.03, 16), list(shift))
    verdicts = {c: s.verdict for c, s in analysis.cells.items()}
    assert verdicts == {"aa": "unchanged", "slow": "slower", "fast": "faster"}
    assert all(len(s.pairs) < 30 for s in analysis.cells.values())  # stopped early


def test_noisy_cell_runs_out_and_replay_reaches_the_same_verdicts() -> None:
    rng = np.random.default_rng(3)
    live = SequentialAnalysis(["noisy", "clear"], threshold=0.05, max_pairs=30)
    measured: dict[str, list[list[float]]] = {"noisy": [], "clear": []}
    rounds = 0
    while live.undecided():
        rounds += 1
        for cell in live.undecided():
            if cell == "noisy" and len(measured[cell]) >= 7:  # its time budget ran out
                live.stop(cell)
                continue
            sd = 0.3 if cell == "noisy" else 0.005
            pair = synthetic_pairs(rng, 0.0, sd, sd, 8)
            measured[cell].append(pair)
            live.add(cell, pair)
        live.look()
    assert live.cells["noisy"].verdict == "inconclusive"
    assert live.cells["noisy"].estimate is not None
    assert live.cells["noisy"].estimate.pairs == 7  # the final look used every pair
    assert live.cells["clear"].verdict == "unchanged"
    again = replay(measured, threshold=0.05, max_pairs=30)
    for cell in measured:
        a, b = live.cells[cell], again.cells[cell]
        assert (a.verdict, a.estimate) == (b.verdict, b.estimate)


def _new_run(store: Store) -> int:
    return store.create_run(
        device="local",
        device_kind="local",
        device_facts={},
        config={"pairing": "x"},
        harness_version="t",
        runtime_version=None,
        label="old",
    )


def test_version_1_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    with Store.open(db, migrations=MIGRATIONS[:1]) as store:
        assert store.schema_version == 1
        run_id = _new_run(store)
        store.add_measurement(
            run_id=run_id,
            model_sha256="a" * 64,
            config={"threads": 1},
            trial=1,
            status="ok",
            reason=None,
            document={"samples_ms": [1.0, 2.0, 3.0]},
        )
    with Store.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_run(run_id).label == "old"
        assert store.completed_keys(run_id) == {("a" * 64, config_key({"threads": 1}), 1)}
        store.add_bursts(
            run_id=run_id,
            model_sha256="a" * 64,
            config={"threads": 1},
            pair=1,
            bursts=[(1, "A", 10.5, [1.0, 1.5]), (3, "A", 11.0, [1.25])],
        )
        rows = store.bursts(run_id)
    assert [(r["pair"], r["position"], r["side"], r["samples_ms"]) for r in rows] == [
        (1, 1, "A", [1.0, 1.5]),
        (1, 3, "A", [1.25]),
    ]
    connection = sqlite3.connect(db)
    try:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()
    assert "bursts" in tables


def test_bursts_of_an_unknown_run_are_refused(tmp_path: Path) -> None:
    from results.errors import ResultsError

    with Store.open(tmp_path / "db.sqlite") as store, pytest.raises(ResultsError, match="no run 7"):
        store.add_bursts(
            run_id=7, model_sha256="a", config={}, pair=1, bursts=[(0, "B", None, [1.0])]
        )
