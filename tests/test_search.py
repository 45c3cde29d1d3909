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
    # ORT: 3 shapes x 2 streams x 2 levels x 2 spinning x 3 batches; each OpenVINO base: 3 x 2 hints x 2 pinning x 3.
    assert space.size() == 72 + 36 + 36 == len(list(space.points()))
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
    measure2, calls2 = fake_measure({k: 1.0 for k in [("onnxruntime", "fixed"), ("onnxruntime", "dynamic"),
                                                      ("openvino", "fixed"), ("openvino", "dynamic")]})
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
    measure, _ = fake_measure({k: 1.0 for k in [("onnxruntime", "fixed"), ("onnxruntime", "dynamic"),
                                                ("openvino", "fixed"), ("openvino", "dynamic")]})

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
