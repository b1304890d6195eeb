"""The one table of ARM core names by MIDR part number, for the agent and the host.

``/proc/cpuinfo`` on arm64 shows each core's "CPU implementer" and "CPU part"; the names are
those of Linux's ``arch/arm64/include/asm/cputype.h`` and Arm's technical reference manuals.
"""

from __future__ import annotations

ARM_IMPLEMENTER = 0x41
ARM_PARTS: dict[int, str] = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1",
    0xD41: "Cortex-A78",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2",
    0xD4D: "Cortex-A715",
    0xD4E: "Cortex-X3",
    0xD4F: "Neoverse-V2",
    0xD80: "Cortex-A520",
    0xD81: "Cortex-A720",
    0xD82: "Cortex-X4",
}


def part_number(text: str | None) -> int | None:
    """``"0xd08"`` -> ``0xD08``; None when the text is not a hex number."""
    try:
        return int(text or "", 16)
    except ValueError:
        return None


def arm_core_name(implementer: str | None, part: str | None) -> str | None:
    """The core name, e.g. Cortex-A72 for implementer 0x41 part 0xd08; None when unknown."""
    impl = part_number(implementer)
    number = part_number(part)
    if impl != ARM_IMPLEMENTER or number is None:
        return None
    return ARM_PARTS.get(number)


def part_name(part: str) -> str:
    """The core name of a "CPU part" value whatever the implementer line says, else
    ``CPU part 0x...`` (what the agent reports when only part numbers are known)."""
    number = part_number(part) if part.lower().startswith("0x") else None
    name = ARM_PARTS.get(number) if number is not None else None
    return name or "CPU part " + part
