"""Work done in a measurement window: FLOPs executed, achieved GFLOP/s and % of the GEMM peak, and the
useful part of that work.

A counting proxy records the input shapes of every batch the SUT runs; the session counts the
FLOPs of each distinct shape once (`Session.flops`). The proxy adds a dict increment per batch.

Two roofline figures, because padding is work the hardware does and the user does not want:
- `pct_of_peak`: executed FLOPs (padding included) per second against the peak: hardware utilization;
- `useful_pct_of_peak`: the FLOPs of the samples unpadded, each on its own, against the same peak;
- `padding_waste_pct`: the share of executed FLOPs that went to padding;
- `useful_pct_of_best_peak`: the useful FLOPs per second against the peak of the host's fastest precision
  (`best_peak_precision`): the headroom a variant leaves, e.g. a BF16 pick on an AMX Xeon against INT8's ceiling.
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

    @property
    def requests(self) -> int:
        return self.inner.requests

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        self.shapes[tuple((name, array.shape) for name, array in batch.items())] += 1
        return self.inner.predict(batch)

    def submit(self, batch: Batch, done) -> None:
        self.shapes[tuple((name, array.shape) for name, array in batch.items())] += 1
        self.inner.submit(batch, done)

    def drain(self) -> None:
        self.inner.drain()

    def flops(self, shapes):
        return self.inner.flops(shapes)

    def executed_flops(self) -> float | None:
        return total_flops(self.inner.flops, self.shapes)


def total_flops(flops, shapes: Counter) -> float | None:
    """FLOPs of every shape in `shapes`, times how often it ran; None if any cannot be counted."""
    count_flops = _sequence_fit(flops, shapes) or flops
    total = 0.0
    for key, count in shapes.items():
        value = count_flops(dict(key))
        if value is None:
            return None
        total += value * count
    return total


def _sequence_fit(flops, shapes: Counter):
    """For token models (every input shaped (batch, length)), FLOPs are batch × (c0 + c1·L + c2·L²):
    linear layers grow with L, attention with L². Fit that from three lengths, check it exactly on a
    fourth (batch 2), and use it; anything that does not fit is counted shape by shape instead.
    Counting each of a hundred distinct lengths through shape inference would take seconds."""
    keys = list(shapes)
    if len(keys) < 5 or any(len({s for _, s in key}) != 1 or len(key[0][1]) != 2 for key in keys):
        return None
    names = [name for name, _ in keys[0]]

    def at(batch: int, length: int):
        return flops(dict.fromkeys(names, (batch, length)))

    points = [(length, at(1, length)) for length in (8, 16, 32)]
    if any(f is None for _, f in points):
        return None
    coeffs = np.polyfit([p[0] for p in points], [p[1] for p in points], 2)
    check = at(2, 24)
    if check is None or abs(2 * np.polyval(coeffs, 24) - check) > 1e-6 * check:
        return None
    return lambda s: float(next(iter(s.values()))[0] * np.polyval(coeffs, next(iter(s.values()))[1]))


def work_figures(session: CountingSession, samples: int, seconds: float, peak_gflops: float | None,
                 useful_shapes: Counter | None = None, best_peak: tuple[str, float] | None = None) -> dict:
    """`useful_shapes`: each served sample's own unpadded input shapes (a None key: a sample that has no
    padding, whose useful work is what ran)."""
    try:
        total = session.executed_flops()
        useful = None
        if useful_shapes and None not in useful_shapes:
            useful = total_flops(session.inner.flops, useful_shapes)
    except Exception:  # a graph the counter cannot read costs the FLOP figures, never the measurement
        total = useful = None
    if total is None or samples == 0 or seconds <= 0:
        return {}
    if useful is None or useful > total:  # no padding to speak of (or none this workload can name)
        useful = total
    figures = {"gflops_per_query": total / samples / 1e9, "gflops_per_s": total / seconds / 1e9,
               "useful_gflops_per_query": useful / samples / 1e9, "useful_gflops_per_s": useful / seconds / 1e9,
               "padding_waste_pct": 100.0 * (1 - useful / total) if total else 0.0}
    if peak_gflops:
        figures["pct_of_peak"] = 100.0 * figures["gflops_per_s"] / peak_gflops
        figures["useful_pct_of_peak"] = 100.0 * figures["useful_gflops_per_s"] / peak_gflops
    if best_peak and best_peak[1] > 0:
        figures["best_peak_precision"] = best_peak[0]
        figures["useful_pct_of_best_peak"] = 100.0 * figures["useful_gflops_per_s"] / best_peak[1]
    return figures
