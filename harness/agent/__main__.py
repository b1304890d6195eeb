"""``python -m harness.agent MODEL [flags]``, and the entry point of the pushed zipapp."""

from __future__ import annotations

import sys

from harness.agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
