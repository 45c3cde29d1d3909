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


Rounds = list[np.ndarray] | np.ndarray  # samples split by the process (round) that measured them


def bootstrap_change(a: Rounds, b: Rounds, statistic: Callable[[np.ndarray], np.ndarray],
                     reps: int = 1000, seed: int = 0) -> Change:
    """`statistic` maps an array of shape (reps, n) to (reps,) values: e.g. a percentile along axis 1.

    Resampling is two-level when the samples come in rounds: rounds are drawn with replacement,
    then samples within the drawn rounds, so the interval covers how much rounds differ.
    """
    rng = np.random.default_rng(seed)
    a, b = _rounds(a, rng), _rounds(b, rng)
    flat_a, flat_b = np.concatenate(a), np.concatenate(b)
    point_a, point_b = float(statistic(flat_a[None, :])[0]), float(statistic(flat_b[None, :])[0])
    ratios = []
    for chunk in _chunks(reps, max(len(flat_a), len(flat_b))):
        sa = statistic(flat_a[_draw(a, chunk, rng)])
        sb = statistic(flat_b[_draw(b, chunk, rng)])
        ratios.append(sb / sa - 1.0)
    ratios = np.concatenate(ratios)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Change(point_a, point_b, point_b / point_a - 1.0, float(low), float(high))


def percentile(q: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.percentile(x, q, axis=1)


def latency_change(a: Rounds, b: Rounds, q: float, seed: int = 0) -> Change:
    """Change of the q-th latency percentile, with its bootstrap CI and Mann-Whitney U's p-value.

    The p-value treats all samples as independent, so with rounds it is optimistic; verdicts rest on the CI.
    """
    from scipy.stats import mannwhitneyu

    change = bootstrap_change(a, b, percentile(q), seed=seed)
    p = float(mannwhitneyu(_flat(a), _flat(b), alternative="two-sided").pvalue)
    return Change(change.a, change.b, change.rel, change.ci_low, change.ci_high, p)


def batch_intervals(completion_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For Offline: samples completed in batches at shared instants; returns (sizes, durations_ms)."""
    times, sizes = np.unique(np.asarray(completion_ms), return_counts=True)
    durations = np.diff(np.concatenate([[0.0], times]))
    return sizes.astype(float), durations


def throughput_change(a_ms: Rounds, b_ms: Rounds, seed: int = 0, reps: int = 1000) -> Change:
    """Change of samples/s, bootstrapping over the batches (size, duration) of each Offline round."""
    rng = np.random.default_rng(seed)

    def batches(rounds: Rounds):
        per_round = [batch_intervals(r) for r in _rounds(rounds, rng)]
        sizes = np.concatenate([s for s, _ in per_round])
        durations = np.concatenate([d for _, d in per_round])
        return sizes, durations, [np.arange(len(s)) for s, _ in per_round]

    (sa, da, ra), (sb, db, rb) = batches(a_ms), batches(b_ms)
    point_a, point_b = float(sa.sum() / da.sum() * 1e3), float(sb.sum() / db.sum() * 1e3)
    ia, ib = _draw(ra, reps, rng), _draw(rb, reps, rng)
    ratios = (sb[ib].sum(1) / db[ib].sum(1)) / (sa[ia].sum(1) / da[ia].sum(1)) - 1.0
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Change(point_a, point_b, point_b / point_a - 1.0, float(low), float(high))


def _flat(rounds: Rounds) -> np.ndarray:
    return np.concatenate(rounds) if isinstance(rounds, list) else np.asarray(rounds, float)


def _rounds(x: Rounds, rng: np.random.Generator) -> list[np.ndarray]:
    rounds = [np.asarray(r, float) for r in x] if isinstance(x, list) else [np.asarray(x, float)]
    total = sum(len(r) for r in rounds)
    if total > MAX_BOOTSTRAP_SAMPLES:  # subsample each round alike, to bound memory
        keep = MAX_BOOTSTRAP_SAMPLES / total
        rounds = [rng.choice(r, max(1, int(len(r) * keep)), replace=False) for r in rounds]
    return [r for r in rounds if len(r)]


def _draw(rounds: list[np.ndarray], reps: int, rng: np.random.Generator) -> np.ndarray:
    """Indices into the concatenated rounds, shape (reps, n): rounds drawn first, then samples within them."""
    sizes = np.array([len(r) for r in rounds])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    k, n = len(rounds), int(sizes.sum())
    if k == 1:
        return rng.integers(0, n, (reps, n))
    picked = rng.integers(0, k, (reps, k))  # which rounds this resample is made of
    which = np.take_along_axis(picked, rng.integers(0, k, (reps, n)), axis=1)
    return offsets[which] + (rng.random((reps, n)) * sizes[which]).astype(np.int64)


def _chunks(reps: int, n: int, budget: int = 5_000_000):
    size = max(1, budget // max(n, 1))
    for start in range(0, reps, size):
        yield min(size, reps - start)
