"""Search: the space from plugin declarations, grid and optuna strategies, pruning, resume."""

import json

from conftest import quick_config

from inferarena.config import RunConfig
from inferarena.kinds.predict import Predict
from inferarena.results import ScenarioResult, VariantResult, VariantSpec
from inferarena.search import Search, SearchSettings, build_space

PREDICT = Predict()


def spec(runtime, precision="fp32", pipeline=None):
    knobs = {"threads": 2, **({"graph_optimization_level": "all", "streams": 1, "allow_spinning": True}
                              if runtime == "onnxruntime" else {}),
             **({"performance_hint": "LATENCY", "static_shapes": True, "pinning": None} if runtime == "openvino" else {})}
    return VariantSpec(name=f"{runtime}/{precision}/fixed", runtime=runtime, precision=precision, shape="fixed",
                       knobs=knobs, pipeline=pipeline)


def test_space_comes_from_declarations():
    space = build_space([spec("onnxruntime"), spec("openvino"), spec("openvino", "bf16")],
                        ["fixed", "bucketed", "dynamic"], "throughput", PREDICT)
    names = [d.name for d in space.dimensions]
    assert names == ["shape", "onnxruntime.streams", "onnxruntime.graph_optimization_level",
                     "onnxruntime.allow_spinning", "openvino.performance_hint", "openvino.pinning", "batch_size"]
    # ORT: 3 shapes x 2 streams x 2 levels x 2 spinning x 3 batches; each OpenVINO base: 3 x 2 hints x 3 pinning
    # (the plugin's choice, true, false) x 3.
    assert space.size() == 72 + 54 + 54 == len(list(space.points()))
    variant = space.variant(1, {"shape": "bucketed", "openvino.performance_hint": "THROUGHPUT",
                                "openvino.pinning": True, "batch_size": 16})
    assert variant.name == "openvino/fp32/bucketed+performance_hint=THROUGHPUT+pinning=True+batch=16"
    assert variant.knobs["performance_hint"] == "THROUGHPUT" and variant.batch_size == 16
    # One query at a time never overlaps: streams are searched only where batches are.
    latency = build_space([spec("onnxruntime")], ["fixed"], "latency", PREDICT)
    assert [d.name for d in latency.dimensions] == ["shape", "onnxruntime.graph_optimization_level",
                                                    "onnxruntime.allow_spinning"]


def test_knobs_declared_for_other_devices_are_not_searched():
    """torch's `compile` knob declares cuda: a CPU search does not try four compile modes."""
    import dataclasses

    torch_spec = VariantSpec(name="torch/fp32/fixed", runtime="torch", precision="fp32", shape="fixed",
                             knobs={"threads": 2, "streams": 1})
    on_cpu = [d.name for d in build_space([torch_spec], ["fixed"], "throughput", PREDICT).dimensions]
    assert "torch.compile" not in on_cpu and "torch.streams" in on_cpu
    on_cuda = build_space([dataclasses.replace(torch_spec, device="cuda")], ["fixed"], "throughput", PREDICT)
    assert "torch.compile" in [d.name for d in on_cuda.dimensions]


def offline_result(variant, value, **extra):
    return VariantResult.of(variant, fidelity={"cos_min": 0.999}, **extra,
                            scenarios={"offline": ScenarioResult("offline", True, None, "quick", {"throughput_sps": value})})


def fake_measure(speeds):
    """Throughput by (runtime, shape); records which trials got past their first round."""
    calls = []

    def measure(variant, keep_going):
        value = speeds[(variant.runtime, variant.shape)] * (variant.batch_size or 1)
        first = offline_result(variant, value)
        go_on = keep_going(first)
        calls.append((variant.name, go_on))
        return VariantResult.merge([first]) if go_on else offline_result(variant, value, pruned=True), (
            [first] if not go_on else [first, first])
    return measure, calls


def test_grid_prunes_what_trails_and_confirms_the_best():
    space = build_space([spec("onnxruntime"), spec("openvino")], ["fixed", "dynamic"], "throughput", PREDICT)
    config = RunConfig(profile="throughput", search={"strategy": "grid", "prune_margin": 0.25})
    measure, calls = fake_measure({("onnxruntime", "fixed"): 10.0, ("onnxruntime", "dynamic"): 30.0,
                                   ("openvino", "fixed"): 5.0, ("openvino", "dynamic"): 29.0})
    search = Search(space, SearchSettings.of(config), PREDICT, measure)
    search.grid()
    assert len(search.trials) == space.size()
    best = search.finalists(1)[0]
    assert best.value == 30.0 * 64 and best.spec.shape == "dynamic"
    pruned = {name for name, go_on in calls if not go_on}
    assert pruned and best.spec.name not in pruned
    assert "openvino/fp32/fixed+pinning=True+batch=16" in pruned  # 80 samples/s against a best of 640


def test_optuna_stays_in_budget_and_resumes_without_repeating():
    space = build_space([spec("onnxruntime"), spec("openvino")], ["fixed", "dynamic"], "throughput", PREDICT)
    config = RunConfig(profile="throughput", search={"strategy": "optuna", "trials": 6})
    measure, calls = fake_measure({("onnxruntime", "fixed"): 10.0, ("onnxruntime", "dynamic"): 30.0,
                                   ("openvino", "fixed"): 5.0, ("openvino", "dynamic"): 29.0})
    search = Search(space, SearchSettings.of(config), PREDICT, measure)
    search.optuna()
    assert len(search.trials) == 6 and len({t.spec.name for t in search.trials}) == 6
    # Resumed with the first three stored: they are not measured again.
    done = {t.spec.name: offline_result(t.spec, t.value) for t in search.trials[:3]}
    measure2, calls2 = fake_measure(dict.fromkeys([("onnxruntime", "fixed"), ("onnxruntime", "dynamic"), ("openvino", "fixed"), ("openvino", "dynamic")], 1.0))
    again = Search(space, SearchSettings.of(config), PREDICT, measure2, done)
    again.optuna()
    assert not {name for name, _ in calls2} & set(done)


def test_time_budget_sets_aside_the_confirmation(monkeypatch):
    """Each round takes 10 s of a 100 s budget; 3 finalists x 2 rounds = 60 s are kept for confirmation."""
    import inferarena.search as search_module

    clock = [0.0]
    monkeypatch.setattr(search_module.time, "monotonic", lambda: clock[0])
    space = build_space([spec("onnxruntime"), spec("openvino")], ["fixed", "dynamic"], "throughput", PREDICT)
    config = RunConfig(profile="throughput", quick=True,
                       search={"strategy": "grid", "time_budget_s": 100, "finalists": 3, "prune_margin": 10})
    measure, _ = fake_measure(dict.fromkeys([("onnxruntime", "fixed"), ("onnxruntime", "dynamic"), ("openvino", "fixed"), ("openvino", "dynamic")], 1.0))

    def timed(variant, keep_going):
        result, rounds = measure(variant, keep_going)
        clock[0] += 10.0 * len(rounds)
        return result, rounds

    search = Search(space, SearchSettings.of(config), PREDICT, timed)
    search.grid()
    # After 2 trials (40 s) the reserve is 60 s: 40 + 60 >= 100, so no third trial starts.
    assert len(search.trials) == 2 and search.round_s() == 10.0


def test_search_command_on_an_onnx_model(tmp_path, mlp_onnx):
    from typer.testing import CliRunner

    from inferarena.cli import app

    db, out = tmp_path / "r.db", tmp_path / "s.json"
    result = CliRunner().invoke(app, [
        "search", "--model", str(mlp_onnx), "--config", str(quick_config(tmp_path)), "--profile", "latency",
        "--strategy", "grid", "--runtimes", "onnxruntime", "--pipelines", "none", "--db", str(db),
        "--json", str(out), "--no-report", "--cache-dir", str(tmp_path / "cache")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "search space: 4 points" in result.output and "Recommendation · profile latency" in result.output
    doc = json.loads(out.read_text())
    assert {v["name"] for v in doc["variants"]} == {
        "onnxruntime/fp32/fixed", "onnxruntime/fp32/fixed+graph_optimization_level=basic",
        "onnxruntime/fp32/fixed+allow_spinning=False",
        "onnxruntime/fp32/fixed+allow_spinning=False+graph_optimization_level=basic"}
    rec = doc["recommendation"]
    assert rec["variant"] in {v["name"] for v in doc["variants"]} and rec["met"] and len(rec["ci"]) == 2
    assert doc["config"]["scenarios"] == ["single_stream"] and doc["pareto"]
    # One runtime × precision: its best trial, then the best unpruned others up to three (a trial pruned after one
    # round is not filled in), confirmed side by side; the pick is the first of them.
    finalists = doc["search"]["finalists"]
    unpruned = sum(not v["pruned"] for v in doc["variants"])
    assert 1 <= len(finalists) == min(3, max(1, unpruned)) and rec["variant"] == finalists[0]["name"]
    assert all(f["precision"] == "fp32" and f["value"] > 0 and f["rounds"] == 1 for f in finalists)  # rounds.count: 1
    assert {f["name"] for f in finalists} == {v["name"] for v in doc["variants"] if v["confirmed"]}
    assert "Finalists, confirmed side by side" in result.output


def test_every_runtime_and_precision_starts_at_its_advised_setting():
    """Optuna's first trials: each base at its runtime's throughput advice and its defaults for the rest
    (OpenVINO's pinning left to the plugin), so one noisy sampler never skips a runtime × precision."""
    space = build_space([spec("onnxruntime"), spec("openvino"), spec("openvino", "bf16")],
                        ["fixed", "dynamic"], "throughput", PREDICT)
    starts = space.starts()
    assert [i for i, _ in starts] == [0, 1, 2]
    ort, ov = starts[0][1], starts[1][1]
    assert ort == {"onnxruntime.streams": 1, "onnxruntime.graph_optimization_level": "all",
                   "onnxruntime.allow_spinning": True, "shape": "dynamic", "batch_size": 16}
    assert ov["openvino.performance_hint"] == "THROUGHPUT" and ov["openvino.pinning"] is None
    assert space.variant(*starts[1]).name == "openvino/fp32/dynamic+performance_hint=THROUGHPUT+batch=16"


def test_finalists_hold_the_best_of_each_runtime_and_precision():
    """The best reading of each runtime × precision is confirmed even when one noisy first round had it
    pruned (the INT8 reading at 729 against BF16's 1,147 on the AMX Xeon); then the best of the rest."""
    from inferarena.search import Trial

    space = build_space([spec("openvino"), spec("openvino", "bf16"), spec("onnxruntime")], ["dynamic"],
                        "throughput", PREDICT)
    search = Search(space, SearchSettings.of(RunConfig(profile="throughput")), PREDICT, lambda s, k: None)

    def trial(base, value, pruned=False, batch=16):
        variant = space.variant(base, {"shape": "dynamic", "batch_size": batch})
        return Trial(variant, {}, value, pruned=pruned)

    search.trials = [trial(1, 1147), trial(1, 1140, batch=32), trial(1, 1100, batch=64), trial(0, 729, pruned=True),
                     trial(2, None)]
    names = [t.spec.name for t in search.finalists(3)]
    assert names == ["openvino/bf16/dynamic+batch=16", "openvino/bf16/dynamic+batch=32", "openvino/fp32/dynamic+batch=16"]
    assert search.finalists_planned() == 3 and search.finalists(0) == []
    assert len(search.finalists(1)) == 2  # the best, and the best of the other group


def test_confirmation_interleaves_the_finalists_and_keeps_only_its_rounds():
    """Round r of every finalist runs before round r + 1 of any; each finalist's stored figure is its
    confirmation rounds alone, marked confirmed, and lent its trial's first round as context."""
    import types

    from inferarena import arena
    from inferarena.search import Trial

    calls, recorded = [], []
    a, b = spec("openvino"), spec("onnxruntime")

    def evaluate(variant, previous=(), context=None, rounds=None):
        calls.append((variant.name, len(previous), context.fidelity["cos_min"]))
        assert rounds.count == 1 and rounds.extra_when_noisy == 0 and rounds.ci_target_pct is None
        new = offline_result(variant, 100.0 + len(calls))
        kept = [*previous, new]
        return VariantResult.merge(kept), kept

    sweep = types.SimpleNamespace(config=RunConfig(quick=True), evaluate=evaluate, record=recorded.append)
    trials = [Trial(a, {}, 500.0, rounds=[offline_result(a, 500.0)]), Trial(b, {}, 400.0, rounds=[offline_result(b, 400.0)])]
    arena._confirm(sweep, trials, {}, planned=2)
    assert [(n, k) for n, k, _ in calls] == [(a.name, 0), (b.name, 0), (a.name, 1), (b.name, 1)]
    last = {r.name: r for r in recorded}
    assert all(r.confirmed and r.rounds == 2 for r in last.values())
    assert last[a.name].scenarios["offline"].metrics["throughput_sps"] == (101 + 103) / 2  # not the trial's 500
    # Resumed after the confirmation: a finalist stored as confirmed is kept as it is.
    calls.clear()
    arena._confirm(sweep, trials, {a.name: last[a.name]}, planned=2)
    assert {n for n, _, _ in calls} == {b.name}
