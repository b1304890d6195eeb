"""The agent's failure kinds and exit codes; every failure becomes one line in the document."""

from __future__ import annotations

EXIT_OK = 0
EXIT_MODEL = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad flag or a setup problem: exit code 2."""


class ModelError(Exception):
    """onnxruntime rejected the model or failed to run it: exit code 1."""


def one_line(error: BaseException) -> str:
    """The error as one line of at most 1000 characters (its type named unless it is ours)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, (UsageError, ModelError)):
        text = f"{type(error).__name__}: {text}"
    return text[:1000]
