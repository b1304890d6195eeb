"""The CLI verbs: one module per verb, each with ``add_parser(subparsers)`` and ``run(args)``.

An explicit table (asv's commands without the subclass scanning): the verb name maps to the
module that implements it; modules are imported only when needed so ``mnbench --help`` and
each verb start fast.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "generate": "harness.commands.generate",
    "cost": "harness.commands.cost",
    "run": "harness.commands.run",
    "devices": "harness.commands.devices",
    "compare": "harness.commands.compare",
    "regress": "harness.commands.regress",
    "runtime": "harness.commands.runtime",
    "results": "harness.commands.results",
    "report": "harness.commands.report",
    "layers": "harness.commands.layers",
    "predict": "harness.commands.predict",
    "lab": "harness.commands.lab",
    "db": "harness.commands.db",
}
