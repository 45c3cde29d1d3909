"""Statistics on raw samples: bootstrap confidence intervals of a change, and Mann-Whitney U.

A change is reported as relative (B / A - 1) with a percentile-bootstrap 95% interval; it is
significant only when the interval excludes zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

MAX_BOOTSTRAP_SAMPLES = 20_000  # larger sets are subsampled (uniformly, seeded) to bound memory


@dataclass(frozen=True)
class Change:
    a: float
    b: float
    rel: float  # B / A - 1
    ci_low: float
    ci_high: float
    p_value: float | None = None  # Mann-Whitney U, two-sided, where it applies

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def bootstrap_change(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                     reps: int = 1000, seed: int = 0) -> Change:
    """`statistic` maps an array of shape (reps, n) to (reps,) values: e.g. a percentile along axis 1."""
    rng = np.random.default_rng(seed)
    a, b = _cap(np.asarray(a, float), rng), _cap(np.asarray(b, float), rng)
    point_a, point_b = float(statistic(a[None, :])[0]), float(statistic(b[None, :])[0])
    ratios = []
    for chunk in _chunks(reps, max(len(a), len(b))):
        sa = statistic(a[rng.integers(0, len(a), (chunk, len(a)))])
        sb = statistic(b[rng.integers(0, len(b), (chunk, len(b)))])
        ratios.append(sb / sa - 1.0)
    ratios = np.concatenate(ratios)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Change(point_a, point_b, point_b / point_a - 1.0, float(low), float(high))


def percentile(q: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.percentile(x, q, axis=1)


def latency_change(a: np.ndarray, b: np.ndarray, q: float, seed: int = 0) -> Change:
    """Change of the q-th latency percentile, with its bootstrap CI and Mann-Whitney U's p-value."""
    from scipy.stats import mannwhitneyu

    change = bootstrap_change(a, b, percentile(q), seed=seed)
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return Change(change.a, change.b, change.rel, change.ci_low, change.ci_high, p)


def batch_intervals(completion_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For Offline: samples completed in batches at shared instants; returns (sizes, durations_ms)."""
    times, sizes = np.unique(np.asarray(completion_ms), return_counts=True)
    durations = np.diff(np.concatenate([[0.0], times]))
    return sizes.astype(float), durations


def throughput_change(a_ms: np.ndarray, b_ms: np.ndarray, seed: int = 0) -> Change:
    """Change of samples/s, bootstrapping over batches (size, duration) of each Offline run."""
    rng = np.random.default_rng(seed)
    (sa, da), (sb, db) = batch_intervals(a_ms), batch_intervals(b_ms)
    point_a, point_b = float(sa.sum() / da.sum() * 1e3), float(sb.sum() / db.sum() * 1e3)
    ia = rng.integers(0, len(sa), (1000, len(sa)))
    ib = rng.integers(0, len(sb), (1000, len(sb)))
    ratios = (sb[ib].sum(1) / db[ib].sum(1)) / (sa[ia].sum(1) / da[ia].sum(1)) - 1.0
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Change(point_a, point_b, point_b / point_a - 1.0, float(low), float(high))


def _cap(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= MAX_BOOTSTRAP_SAMPLES else rng.choice(x, MAX_BOOTSTRAP_SAMPLES, replace=False)


def _chunks(reps: int, n: int, budget: int = 5_000_000):
    size = max(1, budget // max(n, 1))
    for start in range(0, reps, size):
        yield min(size, reps - start)
