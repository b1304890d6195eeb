"""The CLI verbs: one module per verb, each with ``add_parser(subparsers)`` and ``run(args)``.

An explicit table (asv's commands without the subclass scanning): the verb name maps to the
module that implements it and to its one-line summary. The CLI imports only the module of the
verb it runs; the other verbs are listed from this table alone, so ``mnbench --help`` loads
neither onnx nor pandas and each verb starts without the others' imports.
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

SUMMARIES: dict[str, str] = {
    "generate": "write MobileNetV1 ONNX models for a grid",
    "cost": "per-layer MACs, params, bytes and peak memory of an ONNX model",
    "run": "measure models on a device into the results store",
    "devices": "list devices, show their facts, check one end to end",
    "compare": "compare two stored runs with a statistical verdict per cell",
    "regress": "A/B two onnxruntime versions on one device with a statistical verdict",
    "runtime": "isolated onnxruntime environments for regression tests",
    "results": "show measured results from the results database",
    "report": "write the HTML report, charts and markdown summary of runs",
    "layers": "time each separable block against its standard conv (1/N + 1/D_K²)",
    "predict": "predict latency from a kernel-level model fitted from a few minutes of probes",
    "lab": "plan a campaign as work items in a shared store, work it from many hosts",
    "db": "copy runs between results stores (SQLite and PostgreSQL)",
}
"""Each verb's line in ``mnbench --help`` (the verb's own parser uses the same line)."""
