"""``python -m harness`` is the same as the ``mnbench`` console script."""

from harness.cli import console

console()
