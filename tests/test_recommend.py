"""The pick: profiles, constraints, ties within noise, and the closest miss."""

import numpy as np

from inferarena.kinds.predict import Predict
from inferarena.recommend import pareto, recommend
from inferarena.results import RunRecord, VariantResult


def variant(name, p90, thr, cos, rss=500.0, runtime="onnxruntime", **extra):
    return VariantResult.from_dict({
        "name": name, "runtime": runtime, "precision": "fp32", "shape": "dynamic", "knobs": {"threads": 2},
        "status": "ok", "fidelity": {"cos_min": cos}, "memory": {"peak_rss_mb": rss}, "artifact": None,
        "scenarios": {"single_stream": {"valid": True, "metrics": {"latency_ms_p90": p90, "latency_ms_p99": p90 * 1.5}},
                      "offline": {"valid": True, "metrics": {"throughput_sps": thr}}}, **extra})


def samples(center, rounds=2, n=400, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(center, center * 0.05, n) / 1.064 for _ in range(rounds)]  # p90 ~ center


def run_of(*variants):
    return RunRecord.from_dict({"run_id": 7, "config": {"pipelines": [], "workload": {}}, "variants": list(variants)})


def test_latency_pick_with_a_real_margin_and_its_config(tmp_path):
    fast, slow = variant("a", 3.0, 100.0, 0.995), variant("b", 6.0, 300.0, 1.0)
    rounds = {("a", "single_stream"): samples(3.0), ("b", "single_stream"): samples(6.0, seed=1)}
    rec = recommend(run_of(fast, slow), rounds, "latency", {"min_cos": 0.99}, tmp_path)
    assert rec.variant == "a" and rec.met and rec.runner_up == "b"
    assert rec.ci[0] < rec.value < rec.ci[1]
    assert "CI of the difference excludes zero" in rec.explanation and "throughput 100" in rec.explanation  # what it gives up
    assert "Constraints: cos_min 0.995 ≥ 0.99 met." in rec.explanation
    config = (tmp_path / "inferarena-run-7-latency.yaml").read_text()
    assert "onnxruntime" in config and rec.config_path.endswith("latency.yaml")
    assert set(rec.pareto) == {"a", "b"}


def test_close_variants_tie_and_constraints_can_fail(tmp_path):
    a, b = variant("a", 3.0, 100.0, 0.995), variant("b", 3.05, 100.0, 0.995)
    # One slow process each: rounds disagree by far more than the 2% between the variants.
    rounds = {("a", "single_stream"): [samples(2.4)[0], samples(3.6)[1]],
              ("b", "single_stream"): [samples(2.45)[0], samples(3.65)[1]]}
    rec = recommend(run_of(a, b), rounds, "latency", {}, None)
    assert rec.variant == "a" and "the two tie" in rec.explanation

    rec = recommend(run_of(a, b), rounds, "throughput", {"max_p99_ms": 2.0}, None)
    assert not rec.met and rec.variant is None
    assert "No variant meets the constraints. The closest is a: SingleStream p99 4.50 ms misses max 2.00 ms" in rec.explanation


def test_pareto_keeps_only_undominated():
    vs = [variant("fast", 2.0, 100.0, 0.99), variant("wide", 5.0, 400.0, 0.99), variant("worse", 5.0, 100.0, 0.99),
          variant("exact", 6.0, 90.0, 1.0)]
    figures = {v.name: {"single_stream.latency_ms_p90": v.scenarios["single_stream"].metrics["latency_ms_p90"],
                        "offline.throughput_sps": v.scenarios["offline"].metrics["throughput_sps"],
                        "fidelity.cos_min": v.fidelity["cos_min"]} for v in vs}
    assert pareto(vs, figures, Predict.trade_offs) == ["fast", "wide", "exact"]


def test_energy_and_cost_profiles_take_their_ci_from_throughput():
    def priced(name, thr, energy, usd):
        v = variant(name, 3.0, thr, 0.995)
        v.scenarios["offline"].metrics.update(energy_j_per_query=energy, energy_source="estimate", cost_usd_per_1m=usd)
        return v

    def completions(per_batch_ms, batches=60, seed=0):  # Offline: 8 samples complete every ~per_batch_ms
        rng = np.random.default_rng(seed)
        return [np.repeat(np.cumsum(rng.normal(per_batch_ms, per_batch_ms * 0.05, batches)), 8) for _ in range(2)]

    cheap, dear = priced("a", 200.0, 0.05, 0.25), priced("b", 100.0, 0.10, 0.50)
    rounds = {("a", "offline"): completions(40.0), ("b", "offline"): completions(80.0, seed=1)}
    for profile in ("energy", "cost"):
        rec = recommend(run_of(cheap, dear), rounds, profile, {}, None)
        assert rec.variant == "a" and rec.ci[0] < rec.value < rec.ci[1]
        assert "excludes zero" in rec.explanation
    assert "an estimate" in recommend(run_of(cheap, dear), rounds, "energy", {}, None).explanation


def test_reproduce_config_for_a_run_on_the_model_default_pipelines(tmp_path):
    """`pipelines: null` in the stored config (the model's own defaults): the pick's pipeline comes from the
    definition stored with the variant, never from its name."""
    import yaml

    from inferarena.passes.presets import preset

    pipeline = preset("int8-dynamic-ac").model_dump(mode="json")
    plain, built = variant("onnxruntime/fp32/fixed", 6.0, 100.0, 1.0), variant(
        "onnxruntime/int8/dynamic@int8-dynamic-ac", 3.0, 200.0, 0.995, pipeline="int8-dynamic-ac",
        pipeline_config=pipeline)
    run = run_of(plain, built)
    run.config["pipelines"] = None
    rounds = {(v.name, "single_stream"): samples(p, seed=i) for i, (v, p) in enumerate(((plain, 6.0), (built, 3.0)))}
    rec = recommend(run, rounds, "latency", {}, tmp_path)
    config = yaml.safe_load(open(rec.config_path))
    assert rec.variant == built.name and config["pipelines"][0]["name"] == "int8-dynamic-ac"
    assert config["pipelines"][0]["runtimes"] == ["onnxruntime"]
    assert recommend(run, rounds, "throughput", {}, tmp_path).variant == built.name
