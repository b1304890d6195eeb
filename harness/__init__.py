"""mnbench's top layer: measuring (``measure``), the latency predictor (``predict``) and the
command line (``cli``, ``commands``). Everything it uses sits below it: ``mobilenet`` (the
model family), ``devices`` (the agent and the device adapters), ``results`` and ``reports``.
"""

from mobilenet import __version__

__all__ = ["__version__"]
