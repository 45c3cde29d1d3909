"""Adaptive encoders: the controller's per-input decisions, the calibrating passes, the torch session
and the adaptive.* figures from the worker to the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import quick_config
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def deep(tiny_bert_deep, tmp_path_factory):
    """The 6-layer tiny BERT, its workload, its plain module, and a pass context."""
    from inferarena.config import ShapeStrategy, WorkloadConfig
    from inferarena.models.hf_encoder import encoder_artifact, load_embedding_module
    from inferarena.outputs import outputs
    from inferarena.passes.base import PassContext
    from inferarena.passes.layer_drop import _ModuleSession
    from inferarena.workloads import build

    artifact = encoder_artifact(tiny_bert_deep, "tiny-deep")
    workload = build(artifact, WorkloadConfig(num_samples=48, max_length=32))
    module = load_embedding_module(tiny_bert_deep, False)
    reference = tmp_path_factory.mktemp("ref") / "reference.npy"
    np.save(reference, outputs(_ModuleSession(module), workload, list(range(8)), ShapeStrategy.dynamic, batch=1))
    context = PassContext(workload, reference, list(range(8)), threads=1, fingerprint="test", batch_size=4)
    return artifact, workload, module, context


def invoke(*args):
    from inferarena.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _controller(module, **policy):
    from inferarena.adaptive import encoder as ae

    hidden = module.encoder.config.hidden_size
    ramps = {}
    for layer in range(1, 6):
        ramps[f"w{layer}"], ramps[f"b{layer}"] = np.eye(hidden, dtype=np.float32), np.zeros(hidden, np.float32)
    ramps["depth_w"], ramps["depth_b"] = np.zeros(hidden, np.float32), np.array([0.0], np.float32)
    return ae.Controller(ae.Policy(layers=6, **policy), ramps, ae.TorchStages(module.encoder, False))


def _plain(module, batch):
    with torch.inference_mode():
        return module(**{k: torch.from_numpy(v) for k, v in batch.items()}).numpy()


def test_a_policy_that_never_exits_is_the_plain_model(deep):
    artifact, workload, module, _ = deep
    batch = workload.collate(list(range(6)), workload.strategies[-1])
    for policy in ({"method": "early_exit", "min_layer": 2, "tau": 1.5},
                   {"method": "token_prune", "after_layer": 3, "keep_ratio": 1.0},
                   {"method": "early_exit_learned", "min_layer": 2, "margin": 6.0}):
        controller = _controller(module, **policy)
        np.testing.assert_allclose(controller.run(batch), _plain(module, batch), atol=1e-5)
        stats = controller.stats.summary()
        assert stats["layers_mean"] == 6 and stats["early_exit_ratio"] == 0 and stats["layers_hist"][-1] == 6


def test_decisions_are_per_input_whatever_the_batch_and_padding(deep):
    """Exits and token choices depend on the input alone: a padded batch equals its inputs one by one."""
    from inferarena.config import ShapeStrategy

    _, workload, module, _ = deep
    indices = list(range(8))
    for policy in ({"method": "early_exit", "min_layer": 2, "tau": 0.999},
                   {"method": "early_exit_learned", "min_layer": 2, "margin": 3.5},
                   {"method": "token_prune", "after_layer": 2, "keep_ratio": 0.5}):
        controller = _controller(module, **policy)
        one_by_one = np.concatenate([controller.run(workload.collate([i], ShapeStrategy.dynamic)) for i in indices])
        for strategy in (ShapeStrategy.dynamic, ShapeStrategy.fixed):
            batched = controller.run(workload.collate(indices, strategy))
            np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_every_input_exits_where_the_policy_says(deep):
    _, workload, module, _ = deep
    batch = workload.collate(list(range(5)), workload.strategies[-1])
    always = _controller(module, method="early_exit", min_layer=2, tau=-1.0)  # the first chance: layer 3
    always.run(batch)
    assert always.stats.summary()["layers_hist"] == [0, 0, 5, 0, 0, 0]
    learned = _controller(module, method="early_exit_learned", min_layer=2, margin=4.0)  # ceil(0 + 4) = 4
    learned.run(batch)
    stats = learned.stats.summary()
    assert stats["layers_mean"] == 4 and stats["early_exit_ratio"] == 1 and stats["active_params_ratio"] == 0.6667


def test_token_pruning_keeps_the_most_attended_share():
    from inferarena.adaptive.encoder import keep_tokens

    hidden = np.arange(2 * 4 * 1, dtype=np.float32).reshape(2, 4, 1)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    received = np.array([[0.1, 0.4, 0.3, 0.2], [0.9, 0.1, 5.0, 5.0]])  # padding's scores never count
    kept, new_mask = keep_tokens(hidden, mask, received, 0.5)
    assert new_mask.tolist() == [[1, 1], [1, 0]]
    assert kept[0, :, 0].tolist() == [1.0, 2.0] and kept[1, 0, 0] == 4.0


@pytest.mark.parametrize("name", ["adaptive_early_exit", "adaptive_early_exit_learned", "adaptive_token_prune"])
def test_the_passes_calibrate_to_the_budget_and_run_on_torch(deep, tmp_path, name):
    from inferarena import registry
    from inferarena.runtimes.torch_eager import TorchEager

    artifact, workload, _, context = deep
    cls = registry.load(registry.PASSES, name)
    loose = cls().run(artifact, cls.Config(max_drop=0.9, calibration_samples=32), tmp_path / "loose", context)
    report = loose.meta["pass_report"][name]
    assert loose.format == "adaptive_encoder" and loose.meta["adaptive"]["method"] == report["policy"]["method"]
    assert report["budget_met"] and report["cos_min_holdout"] >= 0.1 and report["holdout_inputs"] == 16
    assert report["layers_mean_holdout"] < 6 or report["tokens_kept_ratio_holdout"] < 1  # it saves something
    session = TorchEager().load(loose, "fp32", TorchEager.validate_knobs({"threads": 1}), {})
    got = session.predict(workload.collate([0, 1, 2], workload.strategies[-1]))["sentence_embedding"]
    assert got.shape == (3, 32) and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    stats = session.adaptive_stats(reset=True)
    assert stats["inputs"] == 3 and {"layers_mean", "tokens_kept_ratio", "controller_ms"} <= set(stats)
    assert session.flops({"input_ids": (1, 8)}) is None  # input-dependent work is not counted on all-ones inputs
    assert session.info["adaptive"]["method"] == report["policy"]["method"]
    # A budget no saving can meet: the policy keeps the whole model and says so.
    strict = cls().run(artifact, cls.Config(max_drop=1e-9, calibration_samples=32), tmp_path / "strict", context)
    report = strict.meta["pass_report"][name]
    assert "note" in report and report["layers_mean_holdout"] == 6 and report["tokens_kept_ratio_holdout"] == 1


def test_the_passes_need_data_and_a_sane_depth(deep, tmp_path):
    from inferarena.errors import ConfigError
    from inferarena.passes.adaptive import EarlyExit, EarlyExitConfig, TokenPrune, TokenPruneConfig

    artifact, _, _, context = deep
    with pytest.raises(ConfigError, match="needs calibration data"):
        EarlyExit().run(artifact, EarlyExitConfig(), tmp_path / "a", None)
    with pytest.raises(ConfigError, match="calibration needs 999 samples"):
        EarlyExit().run(artifact, EarlyExitConfig(calibration_samples=999), tmp_path / "b", context)
    with pytest.raises(ConfigError, match="min_layer 6 leaves no layer"):
        EarlyExit().run(artifact, EarlyExitConfig(min_layer=6, calibration_samples=16), tmp_path / "c", context)
    with pytest.raises(ConfigError, match=r"after_layers \[9\]"):
        TokenPrune().run(artifact, TokenPruneConfig(after_layers=[9], calibration_samples=16), tmp_path / "d", context)


def test_every_adaptive_figure_is_in_the_catalogue_and_survives_the_store():
    from inferarena.results import VariantResult, metric

    figures = {"method": "early_exit", "layers_mean": 4.5, "layers_p50": 4, "layers_p90": 6, "layers_hist": [0, 1],
               "early_exit_ratio": 0.5, "tokens_kept_ratio": 1.0, "active_params_ratio": 0.75,
               "acceptance_rate": 0.5, "controller_ms": 0.1, "inputs": 2}
    result = VariantResult("torch/fp32/dynamic@early-exit", "torch", "fp32", "dynamic", adaptive=figures)
    flat = result.flat()
    assert all(metric(f"adaptive.{k}") is not None for k in figures)
    assert flat["adaptive.layers_mean"] == 4.5 and "adaptive.method" not in result.figures()
    again = VariantResult.from_row(result.to_row(), {})
    assert again.adaptive == figures


@pytest.mark.slow
def test_adaptive_presets_run_end_to_end_with_their_figures(tmp_path, tiny_bert_deep):
    """`run --pipelines early-exit,token-prune,layer-drop` on torch and ONNX Runtime (per-stage graphs):
    variants named @preset and the adaptive.* figures in the JSON."""
    cfg = quick_config(tmp_path, scenarios=["single_stream"], runtimes=[{"name": "torch", "precisions": ["fp32"]},
                                                                        {"name": "onnxruntime"}],
                       workload={"num_samples": 96, "eval_samples": 16, "max_length": 32, "batch_size": 8},
                       fidelity={"min_cos_lossy": -1.0})
    out = tmp_path / "run.json"
    result = invoke("run", "--model", tiny_bert_deep, "--config", cfg, "--db", tmp_path / "r.db", "--json", out,
                    "--cache-dir", tmp_path / "cache", "--pipelines", "early-exit,token-prune,layer-drop",
                    "--min-cos", "0.8", "--shapes", "dynamic")
    assert result.exit_code == 0, result.output
    assert "cannot load adaptive_encoder" not in result.output
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    for name in ("torch/fp32/dynamic@early-exit", "torch/fp32/dynamic@token-prune", "torch/fp32/dynamic@layer-drop",
                 "onnxruntime/fp32/dynamic@early-exit", "onnxruntime/fp32/dynamic@token-prune"):
        assert variants[name]["status"] == "ok", variants[name].get("error")
        metrics = variants[name]["metrics"]
        assert "adaptive.layers_mean" in metrics and "adaptive.active_params_ratio" in metrics
    assert variants["torch/fp32/dynamic@early-exit"]["metrics"]["adaptive.inputs"] == 16
    assert variants["onnxruntime/fp32/dynamic@early-exit"]["metrics"]["adaptive.inputs"] == 16
    assert variants["onnxruntime/fp32/dynamic@early-exit"]["passes"] == [
        "adaptive_early_exit", "export_adaptive_onnx"]
    assert variants["torch/fp32/dynamic@early-exit"]["pipeline_config"]["passes"][0]["config"]["max_drop"] == 0.2
    assert "adaptive.method" in variants["onnxruntime/fp32/dynamic@layer-drop"]["metrics"]  # static: survives export


@pytest.mark.parametrize("name", ["adaptive_early_exit", "adaptive_early_exit_learned", "adaptive_token_prune"])
def test_onnx_runtime_runs_the_same_decisions_from_per_stage_graphs(deep, tmp_path, name):
    pytest.importorskip("onnxruntime")
    from inferarena import registry
    from inferarena.passes.export_onnx import ExportAdaptiveOnnx, ExportOnnxConfig
    from inferarena.runtimes.ort import OnnxRuntime
    from inferarena.runtimes.torch_eager import TorchEager

    artifact, workload, _, context = deep
    cls = registry.load(registry.PASSES, name)
    adaptive = cls().run(artifact, cls.Config(max_drop=0.9, calibration_samples=32), tmp_path / "a", context)
    graphs = ExportAdaptiveOnnx().run(adaptive, ExportOnnxConfig(), tmp_path / "onnx", None)
    assert graphs.format == "adaptive_onnx" and (graphs.path / "layer5.onnx").is_file()
    batch = workload.collate(list(range(6)), workload.strategies[-1])
    on_torch = TorchEager().load(adaptive, "fp32", TorchEager.validate_knobs({"threads": 1}), {})
    on_ort = OnnxRuntime().load(graphs, "fp32", OnnxRuntime.validate_knobs({"threads": 1}), {})
    np.testing.assert_allclose(on_ort.predict(batch)["sentence_embedding"],
                               on_torch.predict(batch)["sentence_embedding"], atol=1e-4)
    want, got = on_torch.adaptive_stats(), on_ort.adaptive_stats()
    assert got["layers_hist"] == want["layers_hist"] and got.get("tokens_kept_ratio") == want.get("tokens_kept_ratio")
    assert got["layers_mean"] < 6 or got["tokens_kept_ratio"] < 1  # the graphs really skip work
