"""What a run measures, decided from declarations only: no worker, no measurement."""

import json

import pytest

from inferarena import models, workloads
from inferarena.config import RunConfig
from inferarena.errors import ConfigError
from inferarena.hardware import Host
from inferarena.plan import plan

HOST = Host(cpu_model="test CPU", logical_cores=2, physical_cores=2, flags=frozenset(), memory_gb=8.0)


def _plan(model, **config):
    cfg = RunConfig.parse({"model": str(model), "quick": True, "workload": {"num_samples": 16, "eval_samples": 4},
                           **config})
    artifact = models.resolve(cfg.model)
    return plan(cfg, artifact, workloads.build(artifact, cfg.workload, cfg.generation), HOST)


def test_runtimes_times_precisions_times_shapes(mlp_onnx):
    specs, notes = _plan(mlp_onnx, runtimes=[{"name": "onnxruntime", "precisions": ["fp32"]}], pipelines=[])
    # A tensor model's inputs have fixed shapes: the `dynamic` strategy of the default is skipped, and said so.
    assert [s.name for s in specs] == ["onnxruntime/fp32/fixed"]
    spec = specs[0]
    assert spec.kind == "predict" and spec.steps == () and spec.pipeline is None and spec.knobs["threads"] == 2
    assert any("skipped shape strategy 'dynamic'" in n for n in notes)


def test_a_pipeline_carries_its_definition_and_steps(mlp_onnx):
    specs, _ = _plan(mlp_onnx, runtimes=[{"name": "onnxruntime", "precisions": []}],
                     pipelines=[{"name": "q", "passes": [{"name": "ort_quantize", "config": {"mode": "dynamic"}}]}])
    (spec,) = specs
    assert spec.name == "onnxruntime/int8/fixed@q" and spec.pipeline == "q" and spec.lossy
    assert spec.steps[-1][0] == "ort_quantize" and json.loads(spec.steps[-1][1])["mode"] == "dynamic"
    stored = json.loads(spec.pipeline_config)  # what the reproduce config is built from
    assert stored["name"] == "q" and stored["passes"][0]["name"] == "ort_quantize"


def test_a_bad_pipeline_is_skipped_with_its_reason(mlp_onnx):
    specs, notes = _plan(mlp_onnx, runtimes=[{"name": "onnxruntime", "precisions": ["fp32"]}],
                         pipelines=[{"name": "gguf", "passes": [{"name": "gguf_quantize", "config": {"type": "q8_0"}}]}])
    assert [s.name for s in specs] == ["onnxruntime/fp32/fixed"]
    assert any("gguf" in n and "takes gguf" in n for n in notes)


def test_an_unknown_precision_is_a_config_error(mlp_onnx):
    with pytest.raises(ConfigError, match="no precision 'int3'"):
        _plan(mlp_onnx, runtimes=[{"name": "onnxruntime", "precisions": ["int3"]}], pipelines=[])
