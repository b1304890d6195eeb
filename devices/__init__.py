"""Devices: the Transport seam (local, SSH, adb), device facts, core pinning and the inventory.

This package knows nothing about ONNX or statistics.
"""
