"""Kinds as plugins: each declares its scenarios, profiles, search dimensions and report, and the core asks."""

from inferarena import kinds, registry
from inferarena.config import RunConfig
from inferarena.results import ScenarioResult, VariantResult, VariantSpec, metric
from inferarena.search import Search, SearchSettings, build_space


def test_every_kind_declares_what_the_core_asks():
    for name in registry.KINDS:
        kind = kinds.get(name)
        # Model kinds share the six profiles of `run --profile`; a workflow is judged on its own (accuracy, tokens).
        expected = ({"latency", "accuracy", "balanced", "tokens", "energy", "cost"} if name == "workflow"
                    else {"latency", "throughput", "balanced", "small", "energy", "cost"})
        assert set(kind.profiles) == expected
        assert set(kind.judged_by) == set(kind.profiles)
        for scenarios in kind.judged_by.values():  # a search measures scenarios of the kind's own sessions
            assert all(registry.load(registry.SCENARIOS, s).kind == name for s in scenarios)
        for profile in kind.profiles.values():  # every deciding figure is in the catalogue, with a direction
            assert metric(profile.key) is not None and metric(profile.key).higher_is_better is not None
        assert kind.serving and kind.fidelity_columns and kind.pareto_columns


def test_search_on_a_generative_model_ranks_by_tokens():
    """The bug the reshaping fixed: search knew only the predict profiles, so every LLM trial had no
    figure, was pruned, and the search ended saying no variant had one."""
    generate = kinds.get("generate")
    base = VariantSpec(name="llama_cpp/q4_1", runtime="llama_cpp", precision="q4_1", shape="fixed",
                       knobs={"threads": 2}, kind="generate")
    space = build_space([base], ["fixed"], "throughput", generate, shape_in_name=False)
    assert [d.name for d in space.dimensions][-1] == "batch_size"
    assert space.variant(0, {"shape": "fixed", "batch_size": 4}).name == "llama_cpp/q4_1+batch=4"

    def measure(spec, keep_going):
        tokens = 10.0 * spec.batch_size
        first = VariantResult.of(spec, fidelity={"token_agreement": 1.0}, scenarios={
            "llm_offline": ScenarioResult("llm_offline", True, None, "quick", {"tokens_per_s": tokens})})
        assert keep_going(first)  # it has the profile's figure: not pruned for lacking one
        return VariantResult.merge([first, first]), [first, first]

    search = Search(space, SearchSettings.of(RunConfig(profile="throughput", search={"strategy": "grid"})), generate, measure)
    search.grid()
    assert [t.value for t in search.trials] == [10.0, 40.0, 80.0]
    assert search.finalists(1)[0].spec.batch_size == 8


def test_constraints_of_a_generative_run_read_its_own_scenarios(tmp_path):
    """--max-p99-ms on an LLM run bounds the single-stream request time (before kinds it looked for
    single_stream, which an LLM never runs, and no variant could be picked)."""
    from inferarena.recommend import recommend
    from inferarena.results import RunRecord

    def llm(name, p99, tokens):
        return VariantResult(name=name, runtime="llama_cpp", precision="q4_1", shape="dynamic", kind="generate",
                             fidelity={"token_agreement": 0.9}, memory={"peak_rss_mb": 900.0}, scenarios={
                                 "llm_single_stream": ScenarioResult("llm_single_stream", True, None, "quick",
                                                                     {"latency_ms_p90": p99 * 0.8, "latency_ms_p99": p99}),
                                 "llm_offline": ScenarioResult("llm_offline", True, None, "quick",
                                                               {"tokens_per_s": tokens})})

    run = RunRecord(run_id=3, model="m", config={"workload": {}, "pipelines": []},
                    variants=[llm("fast", 900.0, 50.0), llm("faster", 2500.0, 70.0)])
    rec = recommend(run, {}, "throughput", {"max_p99_ms": 1000.0}, None)
    assert rec.variant == "fast" and "request time p99 900 ms ≤ 1,000 ms met" in rec.explanation
    rec = recommend(run, {}, "throughput", {"max_p99_ms": 100.0}, None)
    assert not rec.met and "request time p99 900 ms misses max 100 ms" in rec.explanation


def test_the_catalogue_declares_direction_and_merge_once():
    assert metric("offline.throughput_sps").higher_is_better and not metric("single_stream.latency_ms_p90").higher_is_better
    assert metric("generation.offline_tokens_per_s").unit == "tok/s"
    assert metric("peak_rss_mb").merge == "max" and metric("latency_bound_met").merge == "min"
    assert metric("task.lee_docsim.spearman").higher_is_better
