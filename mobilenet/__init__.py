"""The MobileNetV1 family and the vocabulary every layer of mnbench shares.

The leaf package: it imports nothing else of the project. The model family is the
architecture table, model specs, the ONNX generator, precision variants, the cost model (the
MAC rule), the single-layer probes and the layer facts; beside it, the small helpers every
layer uses: ``errors`` (the one error root and the stop signals), ``files`` (atomic writes),
``table`` (text tables) and ``validate`` (argument checks).
"""

__version__ = "0.1.0"
