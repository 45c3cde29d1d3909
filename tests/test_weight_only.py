"""Weight-only quantization: ORT MatMulNBits on ONNX graphs, and torchao recipes for the torch runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_mlp_onnx
from pydantic import ValidationError

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, RuntimeUnavailable
from inferarena.passes.ort_weight_only import OrtWeightOnly
from inferarena.passes.torchao_quant import TorchaoQuantize


def _ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize(("bits", "accuracy_level", "tolerance"), [(4, None, 0.2), (4, 4, 0.2), (8, 4, 0.03)])
def test_ort_weight_only_makes_matmul_nbits(tmp_path, bits, accuracy_level, tolerance):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    source = make_mlp_onnx(tmp_path / "mlp.onnx", features=64)
    config = OrtWeightOnly.Config(bits=bits, block_size=32, accuracy_level=accuracy_level)

    result = OrtWeightOnly().run(Artifact(source, "onnx", {"name": "mlp"}), config, tmp_path, None)

    ops = [node.op_type for node in onnx.load(str(result.path)).graph.node]
    assert ops.count("MatMulNBits") == 2 and "MatMul" not in ops
    report = result.meta["pass_report"]["ort_weight_only"]
    assert (report["matmuls"], report["matmul_nbits"]) == (2, 2)
    assert report["size_mb_after"] < report["size_mb_before"]
    assert result.meta["name"] == "mlp" and OrtWeightOnly.precision(config) == f"int{bits}"
    x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    expected = _ort_run(source, x)
    assert np.abs(_ort_run(result.path, x) - expected).max() < tolerance * np.abs(expected).max()


def test_ort_weight_only_needs_constant_weights(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])], "no_weights",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])])
    source = tmp_path / "two_inputs.onnx"
    source.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())

    with pytest.raises(ConfigError, match="no MatMul with a constant"):
        OrtWeightOnly().run(Artifact(source, "onnx"), OrtWeightOnly.Config(), tmp_path, None)


@pytest.mark.parametrize("bad", [{"bits": 3}, {"block_size": 48}, {"accuracy_level": 5}, {"group_size": 32}])
def test_ort_weight_only_config_rejects(bad):
    with pytest.raises(ValidationError):
        OrtWeightOnly.Config(**bad)


def test_torchao_config_rejects():
    with pytest.raises(ValidationError):
        TorchaoQuantize.Config(scheme="int2")
    assert TorchaoQuantize.precision(TorchaoQuantize.Config(scheme="int4_weight_only")) == "int4"


def test_torchao_missing_is_runtime_unavailable(tmp_path, monkeypatch):
    from inferarena.frameworks import torchao

    monkeypatch.setattr(torchao, "_torchao_installed", lambda: False)
    with pytest.raises(RuntimeUnavailable, match="torchao is not installed"):
        TorchaoQuantize().run(Artifact(tmp_path, "hf_encoder"), TorchaoQuantize.Config(), tmp_path / "out", None)


def test_torchao_applies_once(tmp_path):
    (tmp_path / "torchao.json").write_text("{}")
    with pytest.raises(ConfigError, match="already quantized"):
        TorchaoQuantize().run(Artifact(tmp_path, "hf_encoder"), TorchaoQuantize.Config(), tmp_path / "out", None)


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_weight_only", "int4_weight_only"])
def test_torchao_recipe_runs_in_torch_runtime(tmp_path, tiny_bert, scheme):
    pytest.importorskip("torchao")
    from inferarena.models.hf_encoder import encoder_artifact
    from inferarena.runtimes.torch_eager import TorchEager

    source = encoder_artifact(tiny_bert, "tiny")
    config = TorchaoQuantize.Config(scheme=scheme)

    result = TorchaoQuantize().cached_run(source, config, tmp_path / "cache")

    assert json.loads((result.path / "torchao.json").read_text())["scheme"] == scheme
    assert (result.path / "config.json").is_file() and result.meta["torchao"]["scheme"] == scheme
    report = result.meta["pass_report"]["torchao_quantize"]
    assert report["quantized_layers"] == report["linear_layers"] > 0
    knobs = TorchEager.validate_knobs({"threads": 1})
    fp32 = TorchEager().load(source, "fp32", knobs, {})
    quantized = TorchEager().load(result, "fp32", knobs, {})
    assert quantized.info["torchao"] == scheme and "torchao" not in fp32.info
    ids = np.random.default_rng(0).integers(1000, 2000, (2, 12))
    batch = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    got, expected = (s.predict(batch)["sentence_embedding"] for s in (quantized, fp32))
    assert (got * expected).sum(1).min() > 0.98  # both are L2-normalized: this is the cosine
    shapes = dict.fromkeys(fp32.input_names, (1, 8))
    assert quantized.flops(shapes) == fp32.flops(shapes) > 0


def test_torchao_group_size_must_divide(tmp_path, tiny_bert):
    pytest.importorskip("torchao")
    from inferarena.models.hf_encoder import encoder_artifact

    config = TorchaoQuantize.Config(scheme="int4_weight_only", group_size=64)  # tiny_bert is 32 wide
    with pytest.raises(ConfigError, match="torchao cannot apply int4_weight_only"):
        TorchaoQuantize().run(encoder_artifact(tiny_bert, "tiny"), config, tmp_path, None)
