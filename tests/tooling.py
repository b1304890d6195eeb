"""Test helpers for system tools: skip on a laptop that lacks one, fail in CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_tool(name: str, why: str = "") -> str:
    """The tool's path; skip the test when it is missing, or fail when CI is set."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed{': ' + why if why else ''}"
        if in_ci():
            pytest.fail(f"{message} (CI is set, so this cannot be skipped)")
        pytest.skip(message)
    return path


def skip_or_fail(message: str) -> None:
    """Skip with a reason, or fail when CI is set."""
    if in_ci():
        pytest.fail(f"{message} (CI is set, so this cannot be skipped)")
    pytest.skip(message)
