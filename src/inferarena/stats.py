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


def replicates(x: Rounds, statistic: Callable[[np.ndarray], np.ndarray], reps: int = 1000,
               seed: int = 0) -> tuple[float, np.ndarray]:
    """The statistic on all samples, and `reps` bootstrap replicates of it.

    Resampling is two-level when the samples come in rounds: rounds are drawn with replacement,
    then samples within the drawn rounds, so the spread covers how much rounds differ.
    """
    rng = np.random.default_rng(seed)
    rounds = _rounds(x, rng)
    flat = np.concatenate(rounds)
    point = float(statistic(flat[None, :])[0])
    values = [statistic(flat[_draw(rounds, chunk, rng)]) for chunk in _chunks(reps, len(flat))]
    return point, np.concatenate(values)


def throughput_replicates(x_ms: Rounds, reps: int = 1000, seed: int = 0) -> tuple[float, np.ndarray]:
    """Offline samples/s, and its replicates over the batches (size, duration) of each round."""
    rng = np.random.default_rng(seed)
    # Batches, not samples, are resampled here: never thin the completion times (that would change the counts).
    per_round = [batch_intervals(np.asarray(r, float)) for r in (x_ms if isinstance(x_ms, list) else [x_ms]) if len(r)]
    sizes = np.concatenate([s for s, _ in per_round])
    durations = np.concatenate([d for _, d in per_round])
    index = _draw([np.arange(len(s)) for s, _ in per_round], reps, rng)
    return float(sizes.sum() / durations.sum() * 1e3), sizes[index].sum(1) / durations[index].sum(1) * 1e3


def drift_pct(samples: np.ndarray, minimum: int = 20) -> float | None:
    """How far the median latency moved from the first half of a measurement to the second (%, signed), in
    completion order: a machine warming up, throttling or getting a noisy neighbour shows here, where the
    spread of the whole measurement would hide it. None for fewer than `minimum` samples."""
    samples = np.asarray(samples, dtype=np.float64)
    if len(samples) < minimum:
        return None
    half = len(samples) // 2
    first = float(np.median(samples[:half]))
    return (float(np.median(samples[half:])) / first - 1.0) * 100.0 if first > 0 else None


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def change(point_a: float, reps_a: np.ndarray, point_b: float, reps_b: np.ndarray) -> Change:
    """B relative to A from their replicates (independent samples, so replicates pair up arbitrarily)."""
    low, high = interval(reps_b / reps_a - 1.0)
    return Change(point_a, point_b, point_b / point_a - 1.0, low, high)


def bootstrap_change(a: Rounds, b: Rounds, statistic: Callable[[np.ndarray], np.ndarray],
                     reps: int = 1000, seed: int = 0, level: float = 0.95) -> Change:
    """`statistic` maps an array of shape (reps, n) to (reps,) values: e.g. a percentile along axis 1."""
    found = change(*replicates(a, statistic, reps, seed), *replicates(b, statistic, reps, seed + 1))
    if not all(isinstance(x, list) for x in (a, b)):
        return found
    per_round = [[float(statistic(np.asarray(r, float)[None, :])[0]) for r in x if len(r)] for x in (a, b)]
    return widen(found, *per_round, level)


def widen(found: Change, a_rounds: list[float], b_rounds: list[float], level: float = 0.95) -> Change:
    """The CI made at least as wide as a Welch t-interval on the rounds' own figures (log scale).

    With two or three rounds a bootstrap over rounds cannot know how far a fourth would land; the
    t-interval, with its few degrees of freedom, says so. Needs two rounds a side.
    """
    from scipy.stats import t as student

    if len(a_rounds) < 2 or len(b_rounds) < 2 or min(a_rounds + b_rounds) <= 0:
        return found
    la, lb = np.log(a_rounds), np.log(b_rounds)
    va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
    se = np.sqrt(va + vb)
    if se == 0:
        return found
    df = se**4 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    half = float(student.ppf(0.5 + level / 2, df) * se)
    diff = float(lb.mean() - la.mean())
    low, high = np.expm1(diff - half), np.expm1(diff + half)
    return Change(found.a, found.b, found.rel, min(found.ci_low, float(low)), max(found.ci_high, float(high)),
                  found.p_value)


def half_width_pct(rounds: list[np.ndarray], statistic: str, reps: int = 1000, level: float = 0.95) -> float | None:
    """Half the width of a figure's 95% CI, in % of the figure: the widest of the two-level bootstrap and
    a t-interval on the rounds' own figures (log scale, as `widen`). `statistic` is `pNN` (a latency
    percentile over the samples) or `throughput` (Offline completion times). None without samples."""
    rounds = [np.asarray(r, float) for r in rounds if len(r)]
    if not rounds or sum(map(len, rounds)) < 2:
        return None
    if statistic == "throughput":
        point, values = throughput_replicates(rounds, reps)
        per_round = [throughput_replicates(r, 1)[0] for r in rounds]
    else:
        q = float(statistic.removeprefix("p"))
        point, values = replicates(rounds, percentile(q), reps)
        per_round = [float(np.percentile(r, q)) for r in rounds]
    if point <= 0:
        return None
    low, high = interval(values, level)
    half = (high - low) / 2 / point
    if len(per_round) >= 2 and min(per_round) > 0:
        from scipy.stats import t as student

        logs = np.log(per_round)
        se = logs.std(ddof=1) / np.sqrt(len(logs))
        half = max(half, float(np.expm1(student.ppf(0.5 + level / 2, len(logs) - 1) * se)))
    return half * 100.0


def percentile(q: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.percentile(x, q, axis=1)


def latency_change(a: Rounds, b: Rounds, q: float, seed: int = 0, level: float = 0.95) -> Change:
    """Change of the q-th latency percentile, with its bootstrap CI and Mann-Whitney U's p-value.

    The p-value treats all samples as independent, so with rounds it is optimistic; verdicts rest on the CI.
    """
    from scipy.stats import mannwhitneyu

    found = bootstrap_change(a, b, percentile(q), seed=seed, level=level)
    p = float(mannwhitneyu(_flat(a), _flat(b), alternative="two-sided").pvalue)
    return Change(found.a, found.b, found.rel, found.ci_low, found.ci_high, p)


def batch_intervals(completion_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For Offline: samples completed in batches at shared instants; returns (sizes, durations_ms)."""
    times, sizes = np.unique(np.asarray(completion_ms), return_counts=True)
    durations = np.diff(np.concatenate([[0.0], times]))
    return sizes.astype(float), durations


def throughput_change(a_ms: Rounds, b_ms: Rounds, seed: int = 0, reps: int = 1000, level: float = 0.95) -> Change:
    """Change of samples/s, bootstrapping over the batches (size, duration) of each Offline round."""
    found = change(*throughput_replicates(a_ms, reps, seed), *throughput_replicates(b_ms, reps, seed + 1))
    if not (isinstance(a_ms, list) and isinstance(b_ms, list)):
        return found
    return widen(found, *([throughput_replicates(r, 1)[0] for r in x if len(r)] for x in (a_ms, b_ms)), level)


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
    # Each slot comes from a drawn round in proportion to its size, as the point estimate weighs rounds.
    cumulative = np.cumsum(sizes[picked], axis=1)
    u = rng.random((reps, n)) * cumulative[:, -1:]
    slot = (u[..., None] >= cumulative[:, None, :]).sum(axis=-1)
    which = np.take_along_axis(picked, slot, axis=1)
    return offsets[which] + (rng.random((reps, n)) * sizes[which]).astype(np.int64)


def _chunks(reps: int, n: int, budget: int = 5_000_000):
    size = max(1, budget // max(n, 1))
    for start in range(0, reps, size):
        yield min(size, reps - start)
