"""The rounds loop on its own: planned rounds, extra rounds when noisy, pruning, failures, a CI target."""

import numpy as np

from inferarena.config import RoundsConfig
from inferarena.results import ScenarioResult, VariantResult
from inferarena.rounds import measure_rounds


def _round(p50, samples=None, status="ok"):
    if status != "ok":
        return VariantResult(name="v", runtime="onnxruntime", precision="fp32", shape="fixed", status=status,
                             error="worker crashed with SIGSEGV")
    return VariantResult(name="v", runtime="onnxruntime", precision="fp32", shape="fixed", load_s=1.0,
                         fidelity={"cos_min": 1.0}, scenarios={"single_stream": ScenarioResult(
                             "single_stream", True, None, "quick", {"latency_ms_p50": p50, "latency_ms_p90": p50},
                             latencies_ms=np.asarray(samples if samples is not None else [p50] * 50, float))})


def _runner(values):
    """run_round that answers from a list and records which rounds saw the first one."""
    seen = []

    def run_round(index, first):
        seen.append((index, first is not None))
        value = values[index]
        return value if isinstance(value, VariantResult) else _round(value)
    return run_round, seen


def test_planned_rounds_merge_and_later_rounds_see_the_first():
    run_round, seen = _runner([10.0, 10.2])
    merged, rounds = measure_rounds(run_round, RoundsConfig(), planned=2)
    assert len(rounds) == 2 and merged.rounds == 2 and seen == [(0, False), (1, True)]
    assert merged.scenarios["single_stream"].metrics["latency_ms_p50"] == 10.1


def test_rounds_that_disagree_get_an_extra_one():
    run_round, _ = _runner([10.0, 15.0, 12.0])
    merged, rounds = measure_rounds(run_round, RoundsConfig(noisy_spread_pct=10.0), planned=2)
    assert len(rounds) == 3 and merged.scenarios["single_stream"].metrics["round_spread_pct"] > 10


def test_pruned_after_one_round_and_a_late_failure_keeps_what_worked():
    run_round, _ = _runner([10.0, 10.0])
    merged, rounds = measure_rounds(run_round, RoundsConfig(), planned=2, keep_going=lambda first: False)
    assert merged.pruned and len(rounds) == 1
    run_round, _ = _runner([10.0, _round(0, status="failed")])
    merged, rounds = measure_rounds(run_round, RoundsConfig(), planned=2)
    assert merged.ok and len(rounds) == 1 and "round 2: worker crashed" in merged.session_info["failed_round"]
    run_round, _ = _runner([_round(0, status="failed")])
    merged, rounds = measure_rounds(run_round, RoundsConfig(), planned=2)
    assert not merged.ok and rounds == []


def test_a_ci_target_adds_rounds_until_met_or_capped():
    rng = np.random.default_rng(0)
    apart = [_round(10.0 + 2 * (i % 2), rng.normal(10.0 + 2 * (i % 2), 0.1, 200)) for i in range(8)]
    run_round, _ = _runner(apart)
    clock = iter(range(0, 1000, 1))
    limits = RoundsConfig(ci_target_pct=1.0, max_rounds=5, ci_budget_s=1000, noisy_spread_pct=50)
    merged, rounds = measure_rounds(run_round, limits, planned=2, clock=lambda: float(next(clock)))
    assert len(rounds) == 5  # rounds 20% apart never meet 1%: measured up to max_rounds
    steady = [_round(10.0, rng.normal(10.0, 0.05, 400)) for _ in range(8)]
    run_round, _ = _runner(steady)
    merged, rounds = measure_rounds(run_round, RoundsConfig(ci_target_pct=5.0), planned=2)
    assert len(rounds) == 2  # two agreeing rounds already meet 5%
