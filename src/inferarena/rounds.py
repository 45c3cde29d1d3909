"""How many rounds a variant gets: each a fresh process, merged by `VariantResult.merge`.

One process can run 20-50% slower than the next on a shared VM and stay so for its whole life
(thread placement, noisy neighbours): samples inside one process never show that, rounds do. The
planned rounds come first; a measurement whose rounds disagree (`noisy_spread_pct`) or whose round
drifted between its halves (`drift_pct`) gets extra rounds; with a CI target, one more round at a
time until the ranking figure's 95% CI is narrow enough or the budget runs out.

`measure_rounds` is that loop, written against a `run_round` callable, so it is the same whether a
round runs in a spawned process, inline in a test, or on a cluster.
"""

from __future__ import annotations

import time
from typing import Callable

from inferarena.config import RoundsConfig
from inferarena.results import ScenarioResult, VariantResult, ci_width


def drifting(results: list[VariantResult]) -> tuple[str, float] | None:
    """The scenario whose latency moved most between the halves of one round, and by how much (%, absolute)."""
    drifts = [(name, abs(s.metrics["drift_pct"])) for r in results for name, s in r.scenarios.items()
              if s.metrics.get("drift_pct") is not None]
    return max(drifts, key=lambda item: item[1], default=None)


def widest_ci(results: list[VariantResult]) -> tuple[str, float] | None:
    """The scenario whose ranking figure is least certain over these rounds: (name, CI half-width in %)."""
    widths = []
    for name in dict.fromkeys(n for r in results for n in r.scenarios):
        found: list[ScenarioResult] = [r.scenarios[name] for r in results if name in r.scenarios]
        width = ci_width(name, found)
        if width is not None:
            widths.append((name, width))
    return max(widths, key=lambda item: item[1], default=None)


def wants_round(limits: RoundsConfig, results: list[VariantResult], elapsed_s: float,
                new_rounds: int | None = None) -> bool:
    """Measuring to a CI target: one more round while the widest CI is above it and the budget lasts.

    One round never meets a target: its samples cannot show how far the next process would land.
    `new_rounds` are the rounds `elapsed_s` paid for (a confirmation also holds earlier ones).
    """
    if limits.ci_target_pct is None or len(results) >= limits.max_rounds:
        return False
    per_round = elapsed_s / max(1, new_rounds if new_rounds is not None else len(results))
    if elapsed_s + per_round > limits.ci_budget_s:
        return False
    if len(results) < 2:
        return True
    widest = widest_ci(results)
    return widest is not None and widest[1] > limits.ci_target_pct


# run_round(index of the round, the first round's result or None) -> one round's result
RunRound = Callable[[int, "VariantResult | None"], VariantResult]


def measure_rounds(run_round: RunRound, limits: RoundsConfig, planned: int, previous: tuple[VariantResult, ...] = (),
                   keep_going: Callable[[VariantResult], bool] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> tuple[VariantResult, list[VariantResult]]:
    """Rounds of one variant until the policy is satisfied; returns the merged result and the rounds.

    `keep_going(first round)` may stop a variant after one round (search pruning); `previous` rounds
    (a confirmation measurement) are merged with the new ones. A round that fails after others
    worked keeps those, with the failure noted in `session_info`.
    """
    results = list(previous)
    base = planned = len(previous) + planned
    started = clock()
    first = previous[0] if previous else None
    while len(results) < planned:
        outcome = run_round(len(results), first)
        if not outcome.ok:
            if results:  # the rounds that worked still stand; the failure is kept with them
                merged = VariantResult.merge(results)
                merged.session_info = {**(merged.session_info or {}),
                                       "failed_round": f"round {len(results) + 1}: {outcome.error}"}
                return merged, results
            return outcome, results
        results.append(outcome)
        if len(results) == 1:  # outputs, task metrics and warm-up estimates do not change between rounds
            first = outcome
            if keep_going is not None and not keep_going(outcome):
                merged = VariantResult.merge(results)
                merged.pruned = True
                return merged, results
        if len(results) == planned == base:
            worst, drift = VariantResult.merge(results).noisiest(), drifting(results)
            # Noisy (rounds disagree) or drifting (a round's second half moved from its first): measure again.
            if (worst and worst[1] > limits.noisy_spread_pct) or (drift and drift[1] > limits.drift_pct):
                planned += limits.extra_when_noisy
        if len(results) == planned and wants_round(limits, results, clock() - started, len(results) - len(previous)):
            planned += 1
    return VariantResult.merge(results), results
