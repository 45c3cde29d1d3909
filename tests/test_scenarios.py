"""Each scenario on the real MLPerf LoadGen, driving a tiny numpy session."""

import numpy as np
import psutil
import pytest

from inferarena import registry
from inferarena.config import LoadGenConfig, ShapeStrategy
from inferarena.runtimes.base import Session
from inferarena.scenarios.base import QUICK_NOTE, Estimates, ScenarioContext
from inferarena.workloads.tensor import TensorWorkload


class NumpySession(Session):
    """A real (if small) model: one matrix product."""

    def __init__(self, fail: bool = False):
        self.input_names, self.info, self.fail = ["x"], {}, fail
        self.weight = np.ones((4, 2), dtype=np.float32)

    def predict(self, batch):
        if self.fail:
            raise RuntimeError("kernel exploded")
        return {"y": batch["x"] @ self.weight}


def _context(session) -> ScenarioContext:
    workload = TensorWorkload({"x": np.ones((32, 4), dtype=np.float32)}, batched=True, source="test", notes=[])
    return ScenarioContext(
        session=session, workload=workload, strategy=ShapeStrategy.fixed, batch_size=8, quick=True,
        settings=LoadGenConfig(quick_duration_ms=200, server_target_qps=3000),
        estimates=Estimates(latency_s_single=1e-5, latency_s_multi=1e-5, throughput_sps=1_000_000),
    )


PREDICT = [n for n in registry.SCENARIOS if registry.load(registry.SCENARIOS, n).kind == "predict"]


@pytest.mark.parametrize("name", PREDICT)
def test_scenario_runs_on_loadgen(name):
    result = registry.load(registry.SCENARIOS, name)().run(_context(NumpySession()))
    assert result.scenario == name and result.mode == QUICK_NOTE
    assert result.valid, result.invalid_reason
    assert result.loadgen["result_validity"] == "VALID"
    metric = registry.load(registry.SCENARIOS, name).metric
    assert result.metrics[metric] > 0
    assert result.metrics["peak_rss_mb"] > 0 and result.metrics["uss_mb"] > 0
    assert "cpu_util_pct" in result.metrics
    assert len(result.metrics["cpu_util_pct_per_core"]) == psutil.cpu_count()


@pytest.mark.parametrize("name", ["single_stream", "server"])
def test_a_failing_session_raises_after_loadgen_finishes(name):
    with pytest.raises(RuntimeError, match="kernel exploded"):
        registry.load(registry.SCENARIOS, name)().run(_context(NumpySession(fail=True)))


def test_drift_is_the_move_of_the_median_between_halves():
    from inferarena import stats

    steady = np.r_[np.full(30, 10.0), np.full(30, 10.0)]
    warming = np.r_[np.full(30, 10.0), np.full(30, 13.0)]
    assert stats.drift_pct(steady) == 0.0
    assert stats.drift_pct(warming) == pytest.approx(30.0)
    assert stats.drift_pct(np.ones(5)) is None  # too few samples to say


def test_scenarios_report_drift_except_offline():
    results = {name: registry.load(registry.SCENARIOS, name)().run(_context(NumpySession()))
               for name in ("single_stream", "offline")}
    assert "drift_pct" in results["single_stream"].metrics
    assert "drift_pct" not in results["offline"].metrics
    from inferarena.results import metric

    # Every figure a scenario and its trackers emit is in the catalogue: unit, direction, merge rule.
    unknown = {k for r in results.values() for k in r.metrics if metric(k) is None}
    assert not unknown, f"add these to results.METRICS: {sorted(unknown)}"


def test_a_drifting_round_gets_an_extra_round():
    from inferarena.rounds import drifting

    rounds = [_round(single_stream={"drift_pct": -35.0}, server={"drift_pct": 4.0})]
    assert drifting(rounds) == ("single_stream", 35.0)
    assert drifting([_round(offline={})]) is None


def _round(samples=None, **metrics):
    """One round's result: scenario name -> its metrics (and the same raw samples for each)."""
    from inferarena.results import ScenarioResult, VariantResult

    return VariantResult(name="v", runtime="onnxruntime", precision="fp32", shape="fixed", scenarios={
        name: ScenarioResult(name, True, None, "quick", m, latencies_ms=samples) for name, m in metrics.items()})


def test_ci_half_width_narrows_with_agreeing_rounds():
    from inferarena import stats

    rng = np.random.default_rng(0)
    agreeing = [rng.normal(10.0, 0.2, 400) for _ in range(4)]
    apart = [rng.normal(10.0, 0.2, 400), rng.normal(13.0, 0.2, 400)]
    tight, wide = stats.half_width_pct(agreeing, "p50"), stats.half_width_pct(apart, "p50")
    assert 0 < tight < 1.0 < wide  # two rounds 30% apart: the t-interval on the rounds says so
    completions = [np.repeat(np.arange(1, 51) * 10.0, 8) for _ in range(3)]  # Offline: 8 per batch every 10 ms
    assert stats.half_width_pct(completions, "throughput") == pytest.approx(0.0, abs=1e-6)
    assert stats.half_width_pct([], "p50") is None


def test_measuring_to_a_ci_target_adds_rounds_until_met_or_out_of_budget():
    from inferarena.config import RoundsConfig
    from inferarena.rounds import wants_round as _wants_round
    from inferarena.rounds import widest_ci

    rng = np.random.default_rng(1)

    def result(centre):
        return _round(rng.normal(centre, 0.1, 300), single_stream={})

    apart = [result(10.0), result(12.0)]
    assert widest_ci(apart)[0] == "single_stream"
    target = RoundsConfig(ci_target_pct=2.0, max_rounds=4, ci_budget_s=100.0)
    assert _wants_round(target, apart, elapsed_s=10.0)
    assert not _wants_round(RoundsConfig(), apart, elapsed_s=10.0)  # no target: planned rounds only
    assert not _wants_round(target, apart, elapsed_s=80.0)  # a third round (40 s) would overrun the budget
    assert not _wants_round(target, apart + [result(11.0), result(11.0)], elapsed_s=10.0)  # max_rounds
    steady = [result(10.0) for _ in range(3)]
    assert not _wants_round(target, steady, elapsed_s=10.0)  # met


def test_one_round_never_meets_a_ci_target():
    from inferarena.config import RoundsConfig
    from inferarena.rounds import wants_round as _wants_round

    tight = [_round(np.full(1000, 5.0), single_stream={})]
    assert _wants_round(RoundsConfig(ci_target_pct=50.0), tight, elapsed_s=1.0)
    # A confirmation: 3 earlier rounds, 1 new one that took 100 s; a second new one would overrun 150 s.
    assert not _wants_round(RoundsConfig(ci_target_pct=1.0, ci_budget_s=150.0), tight * 4, elapsed_s=100.0, new_rounds=1)
