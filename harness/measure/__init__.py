"""Measuring on devices: sessions, sweeps and plans, backends, and the lab worker."""
