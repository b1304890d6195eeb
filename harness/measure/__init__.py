"""Measuring on a device: one measurement session (``session``) over one measuring-method
seam (``methods``: the Python agent, onnxruntime_perf_test, the limits probe), and the lab's
worker (``lab``: claims a device's work items from a shared store and measures them)."""
