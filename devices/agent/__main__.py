"""``python -m devices.agent MODEL [flags]``, and the entry point of the pushed zipapp."""

from __future__ import annotations

import sys

from devices.agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
