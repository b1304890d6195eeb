"""Device facts for a run: probed once per sweep through the device's own transport.

Linux devices (this machine, boards over SSH) are read by ``devices.probe``; Android phones
by ``devices.android`` (the device's kind picks which: ``DeviceConfig.collect_facts``).
This machine also gets psutil's view (memory, frequencies).
"""

from __future__ import annotations

import platform
from typing import Any

from devices.device import DeviceConfig
from devices.transport import Transport


def probe_device(config: DeviceConfig, transport: Transport) -> dict[str, Any]:
    """The facts recorded with every run on this device."""
    facts = config.collect_facts(transport)
    facts["device"] = {"name": config.name, "kind": config.kind}
    if config.this_machine:
        facts.update(_local_facts())
    return facts


def _local_facts() -> dict[str, Any]:
    import psutil

    memory = psutil.virtual_memory()
    freq = psutil.cpu_freq()
    return {
        "host": platform.node(),
        "psutil": {
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
            "memory_total_bytes": memory.total,
            "memory_available_bytes": memory.available,
            "cpu_freq_mhz": {"current": freq.current, "max": freq.max} if freq else None,
            "boot_time_unix": psutil.boot_time(),
        },
    }
