"""What each exit code of ``mnbench`` means: the one place that chooses them.

Lower layers raise errors and return verdicts; only the command line turns them into an exit
code (README, "Exit codes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from results.compare import Comparison

EXIT_OK = 0
"""Done; a comparison found no confirmed regression."""
EXIT_REGRESSION = 1
"""A comparison confirmed a regression, or a model fails only in the candidate."""
EXIT_USAGE = 2
"""A bad argument, input file, device or database: one line on stderr, nothing was run."""
EXIT_INCONCLUSIVE = 3
"""A comparison could not decide within its budget (a CI job can retry)."""


def comparison_exit_code(comparison: Comparison) -> int:
    """``EXIT_REGRESSION`` for a regression or a model failing only in the candidate,
    ``EXIT_INCONCLUSIVE`` when a cell is undecided or nothing was compared, else ``EXIT_OK``."""
    if comparison.count("slower") or comparison.failed_only_in_candidate:
        return EXIT_REGRESSION
    if comparison.count("inconclusive") or not comparison.cells:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def interrupted_exit_code(signum: int) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended."""
    return 128 + signum
