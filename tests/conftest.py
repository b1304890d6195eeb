"""Shared fixtures. Real servers and clients live in tests/fixtures/ as plugins."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.fixtures.adb",
    "tests.fixtures.sshd",
    "tests.fixtures.arm64",
    "tests.fixtures.postgres",
]
