from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import psutil


@dataclass(frozen=True)
class CpuStats:
    cpu_util_pct: float  # CPU time of the worker / wall time, in % of one core (200 = two cores busy)
    cpu_util_pct_of_host: float  # the same, as % of all logical cores
    cpu_util_pct_per_core: list[float]  # busy % of each logical core over the window, all processes

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class CpuTracker:
    """CPU utilization of this process (all its threads) over the tracked window."""

    def __init__(self):
        self._process = psutil.Process()
        self.result: CpuStats | None = None

    def __enter__(self) -> "CpuTracker":
        self._wall = time.perf_counter()
        self._cpu = self._process.cpu_times()
        self._cores = psutil.cpu_times(percpu=True)
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        now = self._process.cpu_times()
        busy = (now.user - self._cpu.user) + (now.system - self._cpu.system)
        pct = 100.0 * busy / wall if wall > 0 else 0.0
        per_core = []
        for before, after in zip(self._cores, psutil.cpu_times(percpu=True)):
            total = sum(after) - sum(before)
            idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
            per_core.append(round(100.0 * (1 - idle / total), 1) if total > 0 else 0.0)
        self.result = CpuStats(
            cpu_util_pct=round(pct, 1),
            cpu_util_pct_of_host=round(pct / (psutil.cpu_count() or 1), 1),
            cpu_util_pct_per_core=per_core,
        )


# A machine figure (GEMM peak, memory bandwidth) measured while other processes kept more than this share of
# the CPU busy is used for the run at hand but not cached: cached, it would stand for the machine in every
# later run (a bandwidth read at half speed puts decode above 100 % of its roofline).
BUSY_ELSEWHERE_MAX_PCT = 25.0


class BusyElsewhere:
    """How busy the CPU was with other processes while this one measured: system-wide busy time minus this
    process's own CPU time, as % of all logical cores over the window (0 on a quiet machine)."""

    def __enter__(self) -> "BusyElsewhere":
        self._process = psutil.Process()
        self._wall, self._own, self._all = time.perf_counter(), self._process.cpu_times(), psutil.cpu_times()
        self.pct = 0.0
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        own = self._process.cpu_times()
        everything = psutil.cpu_times()
        busy = (_busy(everything) - _busy(self._all)) - ((own.user + own.system) - (self._own.user + self._own.system))
        self.pct = max(0.0, 100.0 * busy / (wall * (psutil.cpu_count() or 1))) if wall > 0 else 0.0

    @property
    def quiet(self) -> bool:
        return self.pct <= BUSY_ELSEWHERE_MAX_PCT


def _busy(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
