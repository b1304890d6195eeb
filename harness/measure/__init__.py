"""Measuring on a device: one measurement session (``session``) over one backend seam
(``backends``: the Python agent, onnxruntime_perf_test, the limits probe)."""
