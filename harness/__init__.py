"""mnbench: a hardware benchmarking harness for MobileNetV1 (Howard et al. 2017, arXiv:1704.04861).

The ``harness`` package owns the architecture table, the ONNX generator, the cost model, the
grid, the device-side runner, sweep orchestration and the CLI.
"""

__version__ = "0.1.0"
