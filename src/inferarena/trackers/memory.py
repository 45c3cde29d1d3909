from __future__ import annotations

import resource
from dataclasses import asdict, dataclass

import psutil

from inferarena.trackers.sampling import Sampler


@dataclass(frozen=True)
class MemoryStats:
    peak_rss_mb: float  # peak resident set of the worker process over its whole life (model load included)
    window_peak_rss_mb: float  # peak sampled during the tracked window only
    uss_mb: float  # unique set size at the end of the window: memory only this process holds

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class MemoryTracker(Sampler):
    """Samples this process's RSS in a background thread; the process-lifetime peak comes from getrusage.

    Sampled at 10 Hz: every wake-up can preempt an inference thread on a small machine, and the
    lifetime peak does not depend on the sampling rate.
    """

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._peak = 0
        self.result: MemoryStats | None = None

    def sample(self) -> None:
        self._peak = max(self._peak, self._process.memory_info().rss)

    def finish(self) -> None:
        # ru_maxrss is in KiB on Linux.
        lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.result = MemoryStats(
            peak_rss_mb=round(max(lifetime, self._peak) / 2**20, 1),
            window_peak_rss_mb=round(self._peak / 2**20, 1),
            uss_mb=round(self._process.memory_full_info().uss / 2**20, 1),
        )
