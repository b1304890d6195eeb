"""Measurement: one session on a device, its backends, plans and the guards around each trial."""
