"""What is measured: the architecture table, model specs, the ONNX generator, precision
variants, the cost model (the MAC rule), the grid and the single-layer probes."""
