"""A simulated Android phone for tests: the adb device protocol over TCP (see ``server``)."""

from tests.adbsim.phone import Core, Phone, pixel_like
from tests.adbsim.server import DEFAULT_FEATURES, AdbSimulator, Faults
from tests.adbsim.thermal import ThermalModel

__all__ = [
    "DEFAULT_FEATURES",
    "AdbSimulator",
    "Core",
    "Faults",
    "Phone",
    "ThermalModel",
    "pixel_like",
]
