"""The one big/little rule and core selection, for every transport.

Cores are grouped by their maximum frequency (sysfs ``cpuinfo_max_freq``, kHz): ``little``
is the slowest cluster, ``big`` every core faster than it, and with three or more frequency
levels the fastest level is also ``prime``. This is what Android and Arm's DynamIQ
documentation mean by big and LITTLE (performance versus efficiency cores, however many
performance tiers there are), and it does not depend on how far apart the tiers happen to
be: for clusters at 1.80, 2.25 and 2.80 GHz ``big`` is both faster clusters, where a
midpoint rule would keep only the 2.80 GHz cores. A device whose cores all share one
maximum frequency has ``big`` == ``little`` == all cores.

``select_cores`` turns a selection (``big``, ``little``, ``prime``, ``all``, a hex mask such
as ``0xf0`` or a list such as ``0,1,4-7``) into core numbers; ``CoreSelectionError`` says in
one line what is wrong.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from devices.agent.cpus import MAX_CPU, format_cpu_list, mask_cpus, parse_cpu_list

CORE_WORDS = ("big", "little", "prime", "all")


class CoreSelectionError(ValueError):
    """A core selection that names no cores, cores the device lacks, or is malformed."""


def clusters(max_khz: Mapping[int, int]) -> dict[str, list[int]]:
    """``little`` (slowest), ``big`` (faster than little), ``prime`` (fastest of >= 3 levels)."""
    if not max_khz:
        return {}
    levels = sorted(set(max_khz.values()))
    everyone = sorted(max_khz)
    if len(levels) == 1:
        return {"little": everyone, "big": everyone}
    grouped = {
        "little": sorted(cpu for cpu, khz in max_khz.items() if khz == levels[0]),
        "big": sorted(cpu for cpu, khz in max_khz.items() if khz > levels[0]),
    }
    if len(levels) >= 3:
        grouped["prime"] = sorted(cpu for cpu, khz in max_khz.items() if khz == levels[-1])
    return grouped


def explicit_cores(spec: str) -> list[int]:
    """The cores of a hex mask (``0xf0``) or a CPU list (``0,1,4-7``), sorted."""
    text = spec.strip().lower()
    shown = repr(spec if len(spec) <= 60 else spec[:60] + "...")
    if text.startswith("0x"):
        digits = text[2:]
        mask = int(digits, 16) if digits and all(c in "0123456789abcdef" for c in digits) else 0
        if mask <= 0:
            raise CoreSelectionError(f"invalid CPU mask {shown}; use a hex mask like 0xf0")
        if mask.bit_length() > MAX_CPU + 1:
            raise CoreSelectionError(
                f"CPU mask {shown} names cores above {MAX_CPU}; no device has them"
            )
        return mask_cpus(mask)
    try:
        return parse_cpu_list(text, MAX_CPU)
    except ValueError as error:
        raise CoreSelectionError(
            f"invalid cpus {shown} ({error}); use core numbers (0,1), ranges (4-7), "
            "big, little, prime, all or a hex mask (0xf0)"
        ) from None


def select_cores(spec: str, cpus: Sequence[int], max_khz: Mapping[int, int]) -> list[int]:
    """Core numbers for ``spec`` on a device with cores ``cpus`` (empty: unknown) whose
    maximum frequencies are ``max_khz`` (only the cores that report one). ``all`` on a
    device that reported no cores is the empty list: no pinning."""
    text = spec.strip().lower()
    available = sorted(set(cpus) | set(max_khz))
    shown = repr(spec if len(spec) <= 60 else spec[:60] + "...")
    if text == "all":
        return available
    if text in CORE_WORDS:
        grouped = clusters(max_khz)
        if not grouped:
            raise CoreSelectionError(
                "cannot tell big from little cores on this device (no cpufreq in sysfs); "
                'give core numbers instead, e.g. cpus = "4-7"'
            )
        if text not in grouped:
            raise CoreSelectionError(
                f"this device has no {text!r} cores (clusters: {', '.join(sorted(grouped))}); "
                "use all, a list like 0-3 or a hex mask like 0xf0"
            )
        return grouped[text]
    cores = explicit_cores(spec)
    if not cores:
        raise CoreSelectionError(f"cpus {shown} selects no cores; pick at least one")
    missing = sorted(set(cores) - set(available)) if available else []
    if missing:
        raise CoreSelectionError(
            f"cpus {shown} names cores {format_cpu_list(missing)} that the device does not "
            f"have; it has {format_cpu_list(available)}"
        )
    return cores
