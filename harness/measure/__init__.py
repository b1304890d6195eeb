"""Measuring on a device: one measurement session (``session``) over one measuring-method
seam (``methods``: the Python agent, onnxruntime_perf_test, the limits probe), the lab's
worker (``worker``: claims a device's work items from a shared store and measures them) and
the workflows the commands call with a request (``requests``)."""
