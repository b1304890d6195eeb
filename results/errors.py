"""The results package's error: a database or stored run the user can fix (no database at
a path, a run that does not exist, a lease someone else holds).

A subclass of the one root, ``mobilenet.errors.MnbenchError``: one line that says what
happened and what to do; the command line prints it and chooses the exit code.
"""

from __future__ import annotations

from mobilenet.errors import MnbenchError


class ResultsError(MnbenchError):
    """A failure with stored results the user can fix."""
