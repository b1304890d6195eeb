"""The devices package's error: a device, transport or inventory problem the user can fix.

A subclass of the one root, ``mobilenet.errors.MnbenchError``: one line that says what
happened and what to do; the command line prints it and chooses the exit code.
"""

from __future__ import annotations

from mobilenet.errors import MnbenchError


class DeviceError(MnbenchError):
    """A failure with a device the user can fix."""
