"""The simulated phone's thermal model: zones heat with load, cool when idle, and throttle.

Load is the CPU time the phone's shell commands (and everything they start) consume: a
ticker thread reads ``/proc/<pid>/stat`` of every process in the sessions the simulator
started and turns the CPU seconds per second into heat. Each heated zone follows Newton's
law, ``dT/dt = gain_c_per_cpu_s * load - (T - ambient_c) / tau_s``, integrated exactly
over each tick (the load is constant within one), so a zone idles back towards ambient
with time constant ``tau_s``.

Above ``trip_c`` on the hottest CPU zone the thermal governor caps ``scaling_max_freq`` of
every core to ``capped_fraction`` of its maximum, as Android's cpufreq cooling devices do,
and lifts the cap again below ``trip_c - hysteresis_c``. ``scaling_cur_freq`` never exceeds
the cap. ``dumpsys thermalservice`` is rewritten with every tick, in the layout of
``ThermalManagerService.dump`` (Android 10+): ``Thermal Status`` rises to LIGHT (1) at the
trip point, MODERATE (2) 10 °C above it and SEVERE (3) 20 °C above it, and the cached and
HAL temperature lists name every zone with its ``TemperatureType``.

Files are replaced atomically (write, then rename), so a reader never sees half a number.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TICK_S = 0.1


@dataclass(frozen=True)
class ThermalModel:
    """Parameters of the simulated heat; the defaults heat a zone by ~10 °C per busy second."""

    ambient_c: float = 32.0
    gain_c_per_cpu_s: float = 12.0  # heating rate per busy core, °C/s, before cooling
    tau_s: float = 4.0  # Newton cooling time constant
    trip_c: float = 55.0
    hysteresis_c: float = 3.0
    capped_fraction: float = 0.6
    heated_types: tuple[str, ...] = ("cpu", "soc", "gpu")  # zone types that follow load
    skin_share: float = 0.3  # other zones heat at this share of the CPU zones' gain


# android.os.Temperature types (TYPE_CPU = 0, GPU 1, BATTERY 2, SKIN 3).
def temperature_type(zone_type: str) -> int:
    name = zone_type.lower()
    if name.startswith("cpu") or name.startswith("soc"):
        return 0
    if name.startswith("gpu"):
        return 1
    if name.startswith("battery"):
        return 2
    if "skin" in name:
        return 3
    return -1


def thermal_status(hottest_cpu_c: float, trip_c: float) -> int:
    if hottest_cpu_c >= trip_c + 20:
        return 3
    if hottest_cpu_c >= trip_c + 10:
        return 2
    if hottest_cpu_c >= trip_c:
        return 1
    return 0


def dumpsys_thermalservice(zones: list[tuple[str, float]], status: int) -> str:
    """``dumpsys thermalservice`` as Android 10-14 prints it, for these zones."""
    lines = [
        f"\tTemperature{{mValue={temp:.1f}, mType={temperature_type(kind)}, "
        f"mName={kind}, mStatus={status if temperature_type(kind) == 0 else 0}}}"
        for kind, temp in zones
    ]
    return (
        "IsStatusOverride: false\n"
        "ThermalEventListeners:\n\tcallbacks: 1\n\tkilled: false\n\tbroadcasts count: -1\n"
        "ThermalStatusListeners:\n\tcallbacks: 3\n\tkilled: false\n\tbroadcasts count: -1\n"
        f"Thermal Status: {status}\n"
        "Cached temperatures:\n" + "\n".join(lines) + "\n"
        "HAL Ready: true\n"
        "HAL connection:\n\tThermalHAL AIDL 1  connected: yes\n"
        "Current temperatures from HAL:\n" + "\n".join(lines) + "\n"
        "Current cooling devices from HAL:\n"
        "Temperature static thresholds from HAL:\n"
    )


def write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class ThermalState:
    """The zones' temperatures over time, driven by the CPU time of the phone's processes."""

    def __init__(
        self,
        model: ThermalModel,
        root: Path,
        zones: tuple[tuple[str, int], ...],
        max_khz: tuple[int, ...],
        cur_khz: tuple[int, ...],
        sessions: Callable[[], set[int]],
    ) -> None:
        self.model = model
        self._root = root
        self._kinds = [kind for kind, _ in zones]
        self.temps_c = [millic / 1000.0 for _, millic in zones]
        self._max_khz = max_khz
        self._cur_khz = cur_khz
        self._sessions = sessions
        self._cpu_ticks: dict[int, int] = {}
        self._clock_ticks = os.sysconf("SC_CLK_TCK")
        self.capped = False
        self.peak_c = max(self.temps_c, default=model.ambient_c)
        self.throttle_events = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="adbsim-thermal", daemon=True)
        self.write()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _heated(self, index: int) -> bool:
        kind = self._kinds[index].lower()
        return any(kind.startswith(prefix) for prefix in self.model.heated_types)

    def hottest_cpu_c(self) -> float:
        cpu = [t for i, t in enumerate(self.temps_c) if self._heated(i)]
        return max(cpu or self.temps_c or [self.model.ambient_c])

    def _busy_cores(self, elapsed_s: float) -> float:
        """CPU seconds per second used by the simulator's sessions since the last tick."""
        sessions = self._sessions()
        seen: dict[int, int] = {}
        used = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[3]) not in sessions:  # field 6: session id
                    continue
                ticks = int(fields[11]) + int(fields[12])  # utime + stime
                pid = int(entry.name)
                seen[pid] = ticks
                used += ticks - self._cpu_ticks.get(pid, 0)
        self._cpu_ticks = seen
        return max(0.0, used / self._clock_ticks / elapsed_s) if elapsed_s > 0 else 0.0

    def advance(self, elapsed_s: float, busy_cores: float) -> None:
        """Integrate ``elapsed_s`` seconds at a constant load (exact for Newton cooling)."""
        model = self.model
        decay = math.exp(-elapsed_s / model.tau_s)
        with self._lock:
            for index, temp in enumerate(self.temps_c):
                gain = model.gain_c_per_cpu_s * (1.0 if self._heated(index) else model.skin_share)
                equilibrium = model.ambient_c + gain * busy_cores * model.tau_s
                self.temps_c[index] = equilibrium + (temp - equilibrium) * decay
            hottest = self.hottest_cpu_c()
            self.peak_c = max(self.peak_c, hottest)
            if not self.capped and hottest >= model.trip_c:
                self.capped = True
                self.throttle_events += 1
            elif self.capped and hottest < model.trip_c - model.hysteresis_c:
                self.capped = False

    def write(self) -> None:
        with self._lock:
            temps = list(self.temps_c)
            capped = self.capped
            status = thermal_status(self.hottest_cpu_c(), self.model.trip_c)
        thermal = self._root / "sys" / "class" / "thermal"
        for index, temp in enumerate(temps):
            write_atomic(thermal / f"thermal_zone{index}" / "temp", f"{round(temp * 1000)}\n")
        cpu = self._root / "sys" / "devices" / "system" / "cpu"
        for index, (top, current) in enumerate(zip(self._max_khz, self._cur_khz, strict=True)):
            limit = int(top * self.model.capped_fraction) if capped else top
            freq = cpu / f"cpu{index}" / "cpufreq"
            write_atomic(freq / "scaling_max_freq", f"{limit}\n")
            write_atomic(freq / "scaling_cur_freq", f"{min(limit, current)}\n")
        write_atomic(
            self._root / "system" / "etc" / "sim-dumpsys-thermalservice",
            dumpsys_thermalservice(list(zip(self._kinds, temps, strict=True)), status),
        )

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            elapsed, self._last = now - self._last, now
            self.advance(elapsed, self._busy_cores(elapsed))
            self.write()
