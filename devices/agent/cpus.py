"""CPU lists and affinity masks: the one parser of ``0,1,4-7`` and the one hex mask.

Linux writes CPU sets as lists (``/proc/self/status`` ``Cpus_allowed_list``, sysfs
``online``: comma-separated numbers and ``low-high`` ranges) and ``taskset`` takes them as a
hexadecimal mask (util-linux and toybox ``taskset``). Both directions live here, for the
agent on the device and for the host.
"""

from __future__ import annotations

from typing import Iterable

MAX_CPU = 4095
"""Highest core number a CPU list may name (Linux's NR_CPUS stops at 8192)."""


def parse_cpu_list(text: str, limit: int | None = None) -> list[int]:
    """``"0,1,4-7"`` -> ``[0, 1, 4, 5, 6, 7]`` (sorted, unique); ``ValueError`` when bad,
    or when a number exceeds ``limit`` (checked before a range is expanded)."""
    cpus: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty entry in CPU list {text!r}")
        if "-" in part:
            first, _, last = part.partition("-")
            lo, hi = int(first), int(last)
            if lo < 0 or hi < lo:
                raise ValueError(f"bad CPU range {part!r}")
            if limit is not None and hi > limit:
                raise ValueError(f"CPU {hi} is above {limit}")
            cpus.update(range(lo, hi + 1))
        else:
            cpu = int(part)
            if cpu < 0:
                raise ValueError(f"negative CPU {part!r}")
            if limit is not None and cpu > limit:
                raise ValueError(f"CPU {cpu} is above {limit}")
            cpus.add(cpu)
    return sorted(cpus)


def cpu_mask(cpus: Iterable[int]) -> str:
    """The hex affinity mask ``taskset`` takes, e.g. ``[4, 5, 6, 7]`` -> ``f0``."""
    mask = 0
    for cpu in cpus:
        if cpu < 0:
            raise ValueError(f"not a CPU number: {cpu}")
        mask |= 1 << cpu
    if not mask:
        raise ValueError("an affinity mask needs at least one CPU")
    return f"{mask:x}"


def mask_cpus(mask: int) -> list[int]:
    """The CPUs set in an affinity mask, e.g. ``0xf0`` -> ``[4, 5, 6, 7]``."""
    return [bit for bit in range(mask.bit_length()) if mask >> bit & 1]


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 4]`` -> ``"0-2,4"``, the inverse of ``parse_cpu_list``."""
    ordered = sorted(set(cpus))
    if not ordered:
        return ""
    out: list[str] = []
    start = prev = ordered[0]
    for cpu in [*ordered[1:], -1]:
        if cpu == prev + 1:
            prev = cpu
            continue
        out.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = cpu
    return ",".join(out)
