"""layer_drop: layers ranked by how little they change the hidden state, dropped within the budget."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tiny_bert, tmp_path_factory):
    """The tiny BERT, its workload, and a context whose reference is the FP32 model's own embeddings."""
    from inferarena.config import ShapeStrategy, WorkloadConfig
    from inferarena.models.hf_encoder import encoder_artifact, load_embedding_module
    from inferarena.outputs import outputs
    from inferarena.passes.base import PassContext
    from inferarena.passes.layer_drop import _ModuleSession
    from inferarena.workloads import build

    artifact = encoder_artifact(tiny_bert, "tiny")
    workload = build(artifact, WorkloadConfig(num_samples=24, max_length=32))
    module = load_embedding_module(tiny_bert, bool(artifact.meta.get("uses_token_type_ids")))
    reference = tmp_path_factory.mktemp("ref") / "reference.npy"
    np.save(reference, outputs(_ModuleSession(module), workload, list(range(8)), ShapeStrategy.dynamic, batch=1))
    return artifact, PassContext(workload, reference, list(range(8)), threads=1, fingerprint="test", batch_size=4)


def test_a_loose_budget_drops_layers_and_a_tight_one_keeps_them(tiny, tmp_path):
    from inferarena.models.hf_encoder import load_embedding_module
    from inferarena.passes.layer_drop import LayerDrop, LayerDropConfig

    artifact, context = tiny
    loose = LayerDrop().run(artifact, LayerDropConfig(max_drop=0.99, calibration_samples=8), tmp_path / "a", context)
    report = loose.meta["pass_report"]["layer_drop"]
    assert report["layers_before"] == 2 and report["layers_after"] == 1 and len(report["dropped"]) == 1
    assert report["budget_met"] and report["trials"][0]["cos_min"] >= 0.01
    assert len(load_embedding_module(loose.path, False).encoder.encoder.layer) == 1  # it reloads with one layer
    # The layer dropped is the one that changes its input least.
    assert report["dropped"] == [int(np.argmin(report["redundancy"]))]
    tight = LayerDrop().run(artifact, LayerDropConfig(max_drop=0.0, calibration_samples=8), tmp_path / "b", context)
    kept = tight.meta["pass_report"]["layer_drop"]
    assert kept["layers_after"] == 2 and kept["dropped"] == [] and "no layer could go" in kept["note"]


def test_layer_drop_is_a_preset_on_every_encoder_runtime():
    from inferarena.config import preset

    spec = preset("layer-drop")
    assert spec.passes[0].name == "layer_drop" and spec.passes[0].config["max_drop"] == 0.01
    assert spec.runtimes is None  # a plain hf_encoder: torch, and ORT/OpenVINO through ONNX export
