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
EXIT_FINDING = 1
"""A finding to fail on: a confirmed regression or a model failing only in the candidate
(``compare``, ``regress``), failed measurements (``run``, ``layers``, ``lab work``), a failed
``devices check``."""
EXIT_ERROR = 2
"""A usage, input, device or database error, printed as one line; with several devices, one
that could not be reached or that stopped."""
EXIT_INCONCLUSIVE = 3
"""A comparison could not decide within its budget (a CI job can retry)."""


def comparison_exit_code(comparison: Comparison) -> int:
    """``EXIT_FINDING`` for a regression or a model failing only in the candidate,
    ``EXIT_INCONCLUSIVE`` when a cell is undecided or nothing was compared, else ``EXIT_OK``."""
    if comparison.count("slower") or comparison.failed_only_in_candidate:
        return EXIT_FINDING
    if comparison.count("inconclusive") or not comparison.cells:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def interrupted_exit_code(signum: int) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended."""
    return 128 + signum
