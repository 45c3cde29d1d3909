"""Work done in a measurement window: FLOPs executed, achieved GFLOP/s and % of the GEMM peak.

A counting proxy records the input shapes of every batch the SUT runs; the session counts the
FLOPs of each distinct shape once (`Session.flops`). The proxy adds a dict increment per batch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from inferarena.runtimes.base import Batch, Session


class CountingSession(Session):
    def __init__(self, inner: Session):
        self.inner = inner
        self.input_names = inner.input_names
        self.info = inner.info
        self.shapes: Counter = Counter()

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        self.shapes[tuple((name, array.shape) for name, array in batch.items())] += 1
        return self.inner.predict(batch)

    def flops(self, shapes):
        return self.inner.flops(shapes)

    def executed_flops(self) -> float | None:
        total = 0.0
        for key, count in self.shapes.items():
            flops = self.inner.flops(dict(key))
            if flops is None:
                return None
            total += flops * count
        return total


def work_figures(session: CountingSession, samples: int, seconds: float, peak_gflops: float | None) -> dict:
    try:
        total = session.executed_flops()
    except Exception:  # a graph the counter cannot read costs the FLOP figures, never the measurement
        total = None
    if total is None or samples == 0 or seconds <= 0:
        return {}
    figures = {"gflops_per_query": total / samples / 1e9, "gflops_per_s": total / seconds / 1e9}
    if peak_gflops:
        figures["pct_of_peak"] = 100.0 * figures["gflops_per_s"] / peak_gflops
    return figures
