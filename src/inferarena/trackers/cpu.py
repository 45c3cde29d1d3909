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
