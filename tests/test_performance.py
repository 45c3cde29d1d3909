"""Performance behaviour: streams keep batches in flight, Offline sorts by length, the roofline counts
useful work, the defaults hold the accuracy-controlled recipes, and the search cuts what cannot win."""

import threading
import time
from collections import Counter

import numpy as np
import pytest

from inferarena.config import LoadGenConfig, RunConfig, ShapeStrategy
from inferarena.kinds.predict import Predict, every_width
from inferarena.results import ScenarioResult, VariantResult, VariantSpec, metric
from inferarena.runtimes.base import ThreadedSession
from inferarena.scenarios.base import Estimates, ScenarioContext
from inferarena.scenarios.mlperf import Offline, Server
from inferarena.search import Search, SearchSettings, build_space
from inferarena.workloads.tensor import TensorWorkload
from inferarena.workloads.text import TextWorkload

PREDICT = Predict()


class SlowSession(ThreadedSession):
    """A batch takes 5 ms of sleeping (which releases the GIL, as runtimes do); records the widths it saw,
    how many batches ran at once, and FLOPs of a token model: batch x (1e6 L + 1e3 L^2)."""

    def __init__(self, streams: int, names=("x",)):
        self.input_names, self.info = list(names), {}
        self.lock, self.running, self.most, self.widths = threading.Lock(), 0, 0, []
        self.start_streams(streams)

    def predict(self, batch):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.widths.append(next(iter(batch.values())).shape[-1])
        time.sleep(0.005)
        with self.lock:
            self.running -= 1
        return {"y": np.zeros(len(next(iter(batch.values()))))}

    def flops(self, shapes):
        batch, length = next(iter(shapes.values()))
        return float(batch * (1e6 * length + 1e3 * length**2))


def context(session, workload, strategy=ShapeStrategy.fixed, batch_size=8) -> ScenarioContext:
    return ScenarioContext(
        session=session, workload=workload, strategy=strategy, batch_size=batch_size, quick=True,
        settings=LoadGenConfig(quick_duration_ms=300, server_target_qps=400),
        estimates=Estimates(latency_s_single=0.005, latency_s_multi=0.005, throughput_sps=2000), peak_gflops=100.0)


def tensors() -> TensorWorkload:
    return TensorWorkload({"x": np.ones((64, 4), dtype=np.float32)}, batched=True, source="test", notes=[])


def texts(lengths) -> TextWorkload:
    rows = [{"input_ids": np.arange(1, n + 1), "attention_mask": np.ones(n, dtype=np.int64)} for n in lengths]
    return TextWorkload(rows, ["input_ids", "attention_mask"], max_length=64, pad_id=0, source="test")


@pytest.mark.parametrize("scenario", [Offline, Server])
def test_streams_keep_that_many_batches_in_flight(scenario):
    for streams in (1, 2):
        session = SlowSession(streams)
        result = scenario().run(context(session, tensors()))
        session.close()
        assert result.metrics["throughput_sps"] > 0
        assert session.most == streams, f"{scenario.name}: {session.most} batches at once with {streams} streams"


def test_offline_sorts_dynamic_batches_by_length_and_counts_useful_work():
    rng = np.random.default_rng(0)
    workload = texts(rng.integers(2, 64, size=128))
    figures = {}
    for strategy in (ShapeStrategy.fixed, ShapeStrategy.dynamic):
        session = SlowSession(1, names=workload.input_names)
        result = Offline().run(context(session, workload, strategy, batch_size=16))
        figures[strategy] = result.metrics
        if strategy is ShapeStrategy.dynamic:  # shortest first: each batch pads only to similar lengths
            assert session.widths == sorted(session.widths) and len(set(session.widths)) > 3
    fixed, dynamic = figures[ShapeStrategy.fixed], figures[ShapeStrategy.dynamic]
    for m in (fixed, dynamic):
        assert m["useful_pct_of_peak"] <= m["pct_of_peak"]
        assert m["useful_gflops_per_query"] <= m["gflops_per_query"]
        assert all(metric(k) is not None for k in ("useful_pct_of_peak", "padding_waste_pct", "useful_gflops_per_s"))
    # Padding every sample to 64 tokens wastes about half the work here; sorted per-batch padding little.
    assert fixed["padding_waste_pct"] > 30 and dynamic["padding_waste_pct"] < 10
    assert fixed["useful_gflops_per_query"] == pytest.approx(dynamic["useful_gflops_per_query"], rel=0.2)


def test_samples_that_are_never_padded_waste_nothing():
    session = SlowSession(1)
    metrics = Offline().run(context(session, tensors())).metrics
    assert metrics["padding_waste_pct"] == 0 and metrics["useful_pct_of_peak"] == metrics["pct_of_peak"]


def test_warm_up_covers_every_width_offline_can_send():
    workload = texts([3, 3, 5, 8, 8, 8, 13, 21, 21, 34])
    dynamic = every_width(workload, ShapeStrategy.dynamic, 4)
    widths = [max(workload.length(i) for i in chunk) for chunk in dynamic]
    assert widths == sorted(set(widths)) and {8, 13, 21, 34} <= set(widths)
    assert all(len(chunk) == 4 for chunk in dynamic)
    assert len(every_width(workload, ShapeStrategy.fixed, 4)) == 1


def test_a_fidelity_bound_puts_the_accuracy_controlled_recipes_in_the_defaults():
    plain = {p.name for p in RunConfig().pipelines_for({})}
    assert plain == {"int8-dynamic-ac", "nncf-int8"}
    bound = RunConfig(constraints={"min_cos": 0.995}).pipelines_for({})
    assert {p.name for p in bound} == {"int8-dynamic-ac", "nncf-int8-ac"}
    assert all(p.passes[0].config["max_drop"] == pytest.approx(0.005) for p in bound)
    assert {p.name: p.runtimes for p in bound} == {"int8-dynamic-ac": ["onnxruntime"], "nncf-int8-ac": ["openvino"]}
    # A model's own defaults swap the same way; a named pipeline is taken as given.
    assert [p.name for p in RunConfig(constraints={"min_cos": 0.99}).pipelines_for(
        {"default_pipelines": {"nncf-int8": ["openvino"], "tflite-int8": ["litert"]}})] == ["nncf-int8-ac", "tflite-int8"]


def _spec(runtime, precision, pipeline=None):
    knobs = {"threads": 2, **({"graph_optimization_level": "all", "streams": 1, "allow_spinning": True}
                              if runtime == "onnxruntime" else {})}
    return VariantSpec(name=f"{runtime}/{precision}/fixed", runtime=runtime, precision=precision, shape="fixed",
                       knobs=knobs, pipeline=pipeline)


def test_the_roofline_cuts_candidates_that_cannot_win():
    """int8 reaches 500 samples/s needing 1 GFLOP a sample; fp32's peak of 100 GFLOP/s allows 100 at most."""
    space = build_space([_spec("onnxruntime", "int8", "q"), _spec("onnxruntime", "fp32")], ["fixed"], "throughput",
                        PREDICT)
    config = RunConfig(profile="throughput", search={"strategy": "grid", "prune_margin": 10})
    measured = []

    def measure(spec, keep_going):
        measured.append(spec.name)
        value = 500.0 if spec.precision == "int8" else 90.0
        result = VariantResult.of(spec, fidelity={"cos_min": 0.999}, scenarios={"offline": ScenarioResult(
            "offline", True, None, "quick", {"throughput_sps": value, "useful_gflops_per_query": 1.0})})
        return result, [result]

    search = Search(space, SearchSettings.of(config), PREDICT, measure, peaks={"fp32": 100.0, "int8": 1000.0})
    search.grid()
    fp32 = [n for n in measured if "/fp32/" in n]
    # The first fp32 point teaches the search fp32's work per sample; every later one is cut unmeasured.
    assert len(fp32) == 1 and search.cut and all("/fp32/" in s.name for s, _ in search.cut)
    assert "roofline" in search.cut[0][1] and "100 samples/s at most" in search.cut[0][1]
    assert search.finalists(1)[0].spec.precision == "int8"


def test_real_runtimes_overlap_requests(mlp_onnx):
    from inferarena.artifacts import Artifact
    from inferarena.runtimes.ort import OnnxRuntime
    from inferarena.runtimes.ov import OpenVINO

    batch = {"x": np.ones((4, 4), dtype=np.float32)}
    for runtime, knobs in ((OnnxRuntime(), {"streams": 2}), (OpenVINO(), {"performance_hint": "THROUGHPUT"})):
        session = runtime.load(Artifact(mlp_onnx, "onnx"), "fp32", runtime.validate_knobs(knobs), {})
        done = Counter()
        for _ in range(8):
            session.submit(batch, lambda error: done.update([error]))
        session.drain()
        assert done == Counter({None: 8}) and session.requests >= 1
        if runtime.name == "onnxruntime":
            assert session.requests == 2 and session.info["streams"] == 2
        session.close()


def test_openvino_int8_models_keep_the_plugins_float_precision(tmp_path, mlp_onnx):
    """A quantized IR's leftover float ops run as plain compile_model runs them (bf16 where the CPU has it),
    unless the fp_precision knob pins them; a floating-point model always runs at its variant's precision."""
    import openvino as ov

    from inferarena.artifacts import Artifact
    from inferarena.runtimes.ov import OpenVINO

    x = ov.opset13.parameter([-1, 4], ov.Type.f32, name="x")
    lo, hi = (ov.opset13.constant(np.float32(v)) for v in (-1.0, 1.0))
    weights = ov.opset13.constant(np.eye(4, dtype=np.float32))
    quantized = ov.opset13.fake_quantize(x, lo, hi, lo, hi, 256)
    model = ov.Model([ov.opset13.matmul(quantized, weights, False, False)], [x], "fq")
    ov.save_model(model, str(tmp_path / "fq.xml"))
    plugin_choice = ov.Core().compile_model(model, "CPU").get_property("INFERENCE_PRECISION_HINT").to_string()

    runtime = OpenVINO()

    def hint(path, fmt, **knobs):
        return runtime.load(Artifact(path, fmt), "fp32", runtime.validate_knobs(knobs), {}).info["inference_precision_hint"]

    assert hint(tmp_path / "fq.xml", "openvino") == plugin_choice
    assert hint(tmp_path / "fq.xml", "openvino", fp_precision="f32") == "f32"
    assert hint(mlp_onnx, "onnx") == "f32"
    assert hint(mlp_onnx, "onnx", fp_precision="bf16") == "f32"  # the variant's precision wins for FP models


def test_openvino_compiles_a_batch1_copy_for_single_samples_where_only_the_batch_varies(tmp_path):
    """Fixed shapes but for the batch: single samples run on a copy compiled for batch 1 (what a hand latency
    loop compiles), batches on the batch-dynamic model, with the same answers; dynamic lengths get no copy."""
    import openvino as ov

    from inferarena.artifacts import Artifact
    from inferarena.runtimes.ov import OpenVINO

    x = ov.opset13.parameter([-1, -1], ov.Type.f32, name="x")
    weights = ov.opset13.constant(np.arange(12, dtype=np.float32).reshape(3, 4))
    ov.save_model(ov.Model([ov.opset13.matmul(x, weights, False, False)], [x], "mm"), str(tmp_path / "mm.xml"))
    runtime = OpenVINO()
    artifact = Artifact(tmp_path / "mm.xml", "openvino")
    fixed = runtime.load(artifact, "fp32", runtime.validate_knobs({}), {"x": [-1, 3]})
    assert fixed.info["batch1_copy"] is True
    rows = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    name = fixed.outputs[0][1]
    together = fixed.predict({"x": rows})[name]
    alone = np.concatenate([fixed.predict({"x": rows[i : i + 1]})[name] for i in range(4)])
    np.testing.assert_allclose(alone, together, rtol=1e-5)
    assert runtime.load(artifact, "fp32", runtime.validate_knobs({}), {"x": [-1, -1]}).info["batch1_copy"] is False
    assert runtime.load(artifact, "fp32", runtime.validate_knobs({"static_shapes": False}),
                        {"x": [-1, 3]}).info["batch1_copy"] is False


def test_optuna_measures_the_runtimes_throughput_advice_first():
    """Every runtime × precision is measured first at its runtime's advice and defaults: OpenVINO's declared
    THROUGHPUT hint with the plugin's own pinning, ONNX Runtime's defaults (dynamic shapes, the smallest
    batch); a latency search starts from the defaults alone."""
    specs = [_spec("onnxruntime", "int8", "q"), _spec("openvino", "int8", "q")]
    space = build_space(specs, ["fixed", "dynamic"], "throughput", PREDICT)
    assert space.starts() == [
        (0, {"onnxruntime.streams": 1, "onnxruntime.graph_optimization_level": "all", "onnxruntime.allow_spinning": True,
             "shape": "dynamic", "batch_size": 16}),
        (1, {"openvino.performance_hint": "THROUGHPUT", "openvino.pinning": None, "shape": "dynamic", "batch_size": 16})]
    latency = build_space(specs, ["fixed", "dynamic"], "latency", PREDICT).starts()
    assert latency[1] == (1, {"openvino.performance_hint": "LATENCY", "openvino.pinning": None, "shape": "dynamic"})
    measured = []

    def measure(spec, keep_going):
        measured.append(spec)
        result = VariantResult.of(spec, fidelity={"cos_min": 0.999}, scenarios={"offline": ScenarioResult(
            "offline", True, None, "quick", {"throughput_sps": 100.0})})
        return result, [result]

    config = RunConfig(profile="throughput", search={"strategy": "optuna", "trials": 3})
    Search(space, SearchSettings.of(config), PREDICT, measure).optuna()
    first = measured[1]
    assert measured[0].runtime == "onnxruntime" and measured[0].knobs.get("streams") == 1
    assert (first.runtime, first.shape, first.batch_size, first.knobs.get("performance_hint"), first.knobs.get("pinning")) == \
        ("openvino", "dynamic", 16, "THROUGHPUT", None)
