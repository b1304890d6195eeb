"""The budget search (``--budget-ms``): which variants are predicted to fit a latency budget,
which of them are on the latency–accuracy Pareto front, and the ``mnbench run`` commands that
measure the chosen ones. Data only: the caller prints it.

The reference top-1 and the Pareto front come from the caller (``Budget``): the accuracy
tables are the reports' own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from harness.predict.estimator import Scope
from harness.predict.prediction import HEADERS, Prediction
from mobilenet.errors import UserError

SEARCH_ALPHAS: Final = (0.25, 0.35, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.4)
SEARCH_RESOLUTIONS: Final = (96, 128, 160, 192, 224, 256)
"""The variants searched when no grid flag is given: α × resolution, separable, D_K 3."""
SEARCH_HEADERS: Final = (*HEADERS, "top-1 %", "Pareto", "within budget")
"""The table headers of ``Candidate.record``'s columns."""


@dataclass(frozen=True)
class Budget:
    """A latency budget to search, and what the search ranks the variants that fit by."""

    limit_ms: float
    device_arg: str
    """``--device`` as given (``local``: the commands name none)."""
    top1: Callable[[float, int], float | None]
    """The fp32 top-1 (%) of the separable D_K 3 variant at (α, resolution); None unknown."""
    pareto_front: Callable[[Sequence[float], Sequence[float]], Sequence[int]]
    """Indices of the points no other beats (lower latency, higher top-1), fastest first."""


@dataclass(frozen=True)
class Candidate:
    """A variant predicted to fit: its top-1 (None: not known), whether it is on the Pareto
    front, and whether its whole interval is within the budget."""

    prediction: Prediction
    top1: float | None
    pareto: bool
    sure: bool

    def record(self) -> dict[str, Any]:
        """Its row in the search's output: the prediction's, with top-1 and the verdicts."""
        return self.prediction.record() | {
            "top1": self.top1 if self.top1 is not None else math.nan,
            "pareto": "yes" if self.pareto else "",
            "sure": "yes" if self.sure else "interval crosses budget",
        }


@dataclass(frozen=True)
class BudgetSearch:
    """What fits the budget, fastest first; the commands that measure the chosen ones."""

    limit_ms: float
    searched: int
    candidates: tuple[Candidate, ...]
    commands: tuple[tuple[str, ...], ...]
    fastest: Prediction
    """The fastest variant searched (fitting or not)."""
    device: str
    """The device the model predicts for."""

    def summary(self) -> str:
        """One line: how many variants fit, before the commands that measure them."""
        return (
            f"{len(self.candidates)} of {self.searched} variants predicted within "
            f"{self.limit_ms:g} ms; measure the chosen ones to confirm:"
        )

    def require_fit(self) -> None:
        """Refuse a budget no variant is predicted to fit, in one line."""
        if not self.candidates:
            raise UserError(
                f"no variant is predicted to run within {self.limit_ms:g} ms on "
                f"{self.device}; the fastest is {self.fastest.name} at "
                f"{self.fastest.latency_ms:.2f} ms: raise --budget-ms or give smaller --alpha"
            )


def search_budget(predictions: Sequence[Prediction], budget: Budget, scope: Scope) -> BudgetSearch:
    """The variants of ``predictions`` predicted within ``budget`` by a model of ``scope``,
    ranked by their reference top-1."""
    fitting = sorted(
        (p for p in predictions if p.latency_ms <= budget.limit_ms), key=lambda p: p.latency_ms
    )
    scored = [
        (p, budget.top1(p.alpha, p.resolution))
        if p.variant == "separable" and p.kernel == 3
        else (p, None)
        for p in fitting
    ]
    known = [(p, t) for p, t in scored if t is not None]
    front = {
        id(known[i][0])
        for i in budget.pareto_front([p.latency_ms for p, _ in known], [t for _, t in known])
    }
    candidates = tuple(
        Candidate(p, t, id(p) in front, p.high_ms <= budget.limit_ms) for p, t in scored
    )
    chosen = [p for p, _ in known if id(p) in front] or fitting[-1:]
    return BudgetSearch(
        limit_ms=budget.limit_ms,
        searched=len(predictions),
        candidates=candidates,
        commands=tuple(run_command(p, budget.device_arg, scope.threads) for p in chosen),
        fastest=min(predictions, key=lambda p: p.latency_ms),
        device=scope.device,
    )


def run_command(prediction: Prediction, device: str, threads: int) -> tuple[str, ...]:
    """The ``mnbench run`` command that measures one predicted variant."""
    p = prediction
    argv = [
        "mnbench",
        "run",
        *(["--device", device] if device != "local" else []),
        "--threads",
        str(threads),
        "--alpha",
        repr(p.alpha),
        "--resolution",
        str(p.resolution),
    ]
    if p.variant != "separable":
        argv += ["--variant", p.variant]
    if p.kernel != 3:
        argv += ["--kernel", str(p.kernel)]
    return tuple(argv)
