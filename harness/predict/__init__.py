"""Latency prediction: a kernel-level latency model fitted from layer probes, per device."""
