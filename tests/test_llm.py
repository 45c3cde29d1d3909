"""Generative models: the bundled SmolLM2 GGUF, prompts, greedy fidelity, LoadGen token latencies, and
the whole `run` on real runtimes (llama.cpp, transformers, ONNX Runtime GenAI, OpenVINO GenAI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferarena import models, workloads
from inferarena.config import GenerationConfig, LengthDist, RunConfig, WorkloadConfig
from inferarena.errors import InferarenaError, ModelError

# No module-wide skip: the pure tests (length distributions, token agreement) run without llama.cpp; the
# tests that read a GGUF skip through the `smollm2` fixture, and those that run llama.cpp through `llama`.
PROMPT = [504, 3575, 282, 4649, 314]  # "The capital of France is"


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf")
    try:
        return models.resolve("smollm2")
    except InferarenaError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def llama():
    return pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def prompts(smollm2):
    generation = GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48),
                                  output_tokens=LengthDist(median=8, min=8, max=8), perplexity_tokens=64)
    return workloads.build(smollm2, WorkloadConfig(num_samples=32), generation)


def test_bundled_gguf_is_described_from_its_header(smollm2):
    meta = smollm2.meta
    assert smollm2.format == "gguf" and meta["kind"] == "generate"
    assert (meta["layers"], meta["hidden"], meta["heads"], meta["kv_heads"]) == (30, 576, 9, 3)
    assert meta["precision"] == "q4_1" and meta["vocab"] == 49152
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(meta["tokenizer"]).encode("The capital of France is", add_special_tokens=False).ids
    assert ids == PROMPT


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="not a readable GGUF"):
        models.resolve(str(bad))
    cli = subprocess.run([sys.executable, "-m", "inferarena", "run", "--model", str(bad), "--quick"],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert cli.returncode == 2
    assert "not a readable GGUF" in cli.stderr + cli.stdout and "Traceback" not in cli.stderr


def test_prompts_follow_the_length_distributions(prompts):
    lengths = [len(p) for p in prompts.prompts]
    assert min(lengths) >= 8 and max(lengths) <= 48 and len(set(lengths)) > 3
    assert set(prompts.outputs) == {8}
    assert len(prompts.perplexity_text) == 64
    described = prompts.describe()
    assert described["kind"] == "prompts" and "Lee" in described["source"]


def test_length_distribution_is_validated():
    with pytest.raises(ValueError, match="min <= median <= max"):
        LengthDist(median=10, min=20, max=30)


def test_token_agreement_counts_up_to_the_first_difference():
    from inferarena.evaluators.generation import score

    found = score([[1, 2, 3, 4], [1, 9, 3, 4]], [[1, 2, 3, 4], [1, 2, 3, 4]], ppl=11.0, ppl_reference=10.0)
    assert found.token_agreement == pytest.approx((1.0 + 0.25) / 2)
    assert found.exact_match == 0.5 and found.first_divergence_mean == 2.5
    assert found.perplexity_delta_pct == pytest.approx(10.0)


@pytest.mark.native
def test_llama_cpp_greedy_tokens_and_logprobs(smollm2, llama):
    from inferarena.runtimes.llama_cpp import LlamaCpp

    session = LlamaCpp().load(smollm2, "native", LlamaCpp.validate_knobs({"threads": 2}), {"input_ids": [1, 256]})
    seen: list[int] = []
    first = session.generate(PROMPT, 6, seen.append)
    assert first == seen and len(first) == 6 and first[0] == 7042  # " Paris"
    assert session.generate(PROMPT, 6) == first  # greedy and from a fresh cache: the same every time
    logprobs = session.token_logprobs(PROMPT + first)
    assert logprobs.shape == (len(PROMPT) + 5,) and (logprobs <= 0).all()
    session.close()


@pytest.mark.native
def test_loadgen_reports_ttft_and_tpot(smollm2, prompts, llama):
    from inferarena.runtimes.llama_cpp import LlamaCpp
    from inferarena.scenarios.base import Estimates, ScenarioContext
    from inferarena.scenarios.generation import LLMSingleStream

    config = RunConfig(model="smollm2", quick=True)
    session = LlamaCpp().load(smollm2, "native", LlamaCpp.validate_knobs({"threads": 2}), prompts.input_shapes(None))
    ctx = ScenarioContext(session=session, workload=prompts, strategy=prompts.strategies[0], batch_size=4, quick=True,
                          settings=config.loadgen, estimates=Estimates(0.2, 0.2, 5.0), rounds=2,
                          generation=config.generation)
    result = LLMSingleStream().run(ctx)
    m = result.metrics
    assert m["output_tokens"] >= 8 * 8  # at least eight requests of eight tokens
    assert 0 < m["ttft_ms_p50"] < m["latency_ms_p50"]
    assert m["tpot_ms_p50"] > 0 and m["itl_ms_p50"] > 0 and m["decode_tokens_per_s"] > 0
    # TPOT is (request time - TTFT) / (tokens - 1): the two views of decode speed agree within noise.
    assert m["tpot_ms_p50"] == pytest.approx(m["itl_ms_p50"], rel=0.6)
    assert not result.valid and "early stopping" in result.invalid_reason  # a quick run is too short to bound p90
    session.close()


@pytest.mark.slow
def test_run_smollm2_end_to_end(tmp_path, llama):
    """The user's command on the bundled LLM, cut down to three variants: leaderboard, DB and --json."""
    config = tmp_path / "llm.yaml"
    config.write_text(
        "model: smollm2\nquick: true\nrounds: {count: 1}\n"
        "workload: {num_samples: 32}\n"
        "generation: {prompt_tokens: {median: 32, min: 16, max: 64}, output_tokens: {median: 16, min: 16, max: 16},"
        " fidelity_prompts: 4, fidelity_tokens: 16, perplexity_tokens: 128}\n"
        "runtimes: [{name: llama_cpp}, {name: transformers, precisions: [bf16]}, {name: ort_genai}]\n"
        "pipelines:\n"
        "  - {name: gguf-q8_0, passes: [{name: gguf_quantize, config: {type: q8_0}}], runtimes: [llama_cpp]}\n"
        "  - {name: ort-genai-int8, passes: [{name: ort_genai_build, config: {precision: int8}}], runtimes: [ort_genai]}\n")
    out = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "inferarena", "run", "--config", str(config), "--db",
                           str(tmp_path / "r.db"), "--json", str(out)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "220"}, cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "TTFT p50 ms" in done.stdout and "token agree" in done.stdout and "%BW roofline" in done.stdout
    document = json.loads(out.read_text())
    variants = {v["name"]: v for v in document["variants"]}
    assert set(variants) == {"llama_cpp/q4_1", "transformers/bf16", "llama_cpp/q8_0@gguf-q8_0",
                             "ort_genai/int8@ort-genai-int8"}
    for v in variants.values():
        assert v["status"] == "ok", v["error"]
        m = v["metrics"]
        assert m["generation.ttft_ms_p50"] > 0 and m["generation.tpot_ms_p50"] > 0 and m["generation.tokens_per_s"] > 0
        assert 0 <= m["fidelity.token_agreement"] <= 1
        assert 0 < m["generation.pct_of_bandwidth"] < 100
    assert document["environment"]["generation_reference"]["perplexity"] > 1
    # The INT8 ONNX Runtime GenAI build follows the FP32 reference closely on a 135M model.
    assert variants["ort_genai/int8@ort-genai-int8"]["metrics"]["fidelity.token_agreement"] > 0.5
    assert Path(tmp_path / "inferarena-run-1.html").is_file() and "Report:" in done.stdout


@pytest.mark.slow  # a real server under load: its SLO probes fail when other work shares the cores
def test_llama_cpp_server_peak_request_rate(tmp_path):
    """llama.cpp's OpenAI-compatible server, started on loopback, streamed under LoadGen's Server scenario:
    a peak request rate within the TTFT/TPOT bounds, and nothing left running afterwards."""
    pytest.importorskip("llama_cpp.server.app")
    from inferarena.serving import bench, process

    config = bench.ServeBenchConfig(
        model="smollm2", probe_ms=1500, max_probes=4, client_threads=4, workload=WorkloadConfig(num_samples=16),
        generation=GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48),
                                    output_tokens=LengthDist(median=8, min=8, max=8), ttft_ms_p99=3000,
                                    tpot_ms_p99=500))
    result = bench.serve_bench(config, tmp_path / "cache", tmp_path)
    [entry] = result.servers
    assert entry.server == "llama_cpp_server" and entry.ok, entry
    assert entry.peak_qps_at_slo > 0 and entry.ttft_ms_p99 <= 3000 and entry.tpot_ms_p99 <= 500
    assert entry.points and all(p.ttft_ms_p99 is not None for p in entry.points)
    # every request's TTFT and TPOT: attainment and goodput at each rate
    assert all(0 <= p.slo_attainment_pct <= 100 for p in entry.points)
    entry = entry.as_dict()
    # Every request streams its whole output: no request is cut short by the next (interrupt_requests off),
    # and end-of-sequence is suppressed (logit_bias), as the runtimes in `run` generate exactly n tokens.
    assert entry["tokens_per_request"] == pytest.approx(8.0)
    assert not process._RUNNING  # the server was stopped by its own pid


def test_generation_scenario_survives_a_failing_runtime(prompts):
    """A runtime that raises mid-request fails the scenario with its error; LoadGen (token latencies on) does not
    crash the process."""
    from inferarena.runtimes.base import GenerativeSession
    from inferarena.scenarios.base import Estimates, ScenarioContext
    from inferarena.scenarios.generation import LLMServer, LLMSingleStream

    class Broken(GenerativeSession):
        info, weight_bytes = {}, 0

        def generate(self, prompt, max_new_tokens, on_token=None):
            raise RuntimeError("decoder exploded")

    config = RunConfig(model="smollm2", quick=True)
    for scenario in (LLMSingleStream(), LLMServer()):
        ctx = ScenarioContext(session=Broken(), workload=prompts, strategy=prompts.strategies[0], batch_size=4,
                              quick=True, settings=config.loadgen, estimates=Estimates(0.01, 0.01, 50.0), rounds=4,
                              generation=config.generation)
        with pytest.raises(RuntimeError, match="decoder exploded"):
            scenario.run(ctx)


def test_hf_causal_lm_folder_is_claimed_before_encoders(tmp_path, smollm2):
    import shutil

    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 2,
              "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
              "max_position_embeddings": 256, "eos_token_id": 2}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shutil.copy(smollm2.meta["tokenizer"], tmp_path / "tokenizer.json")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 128)
    artifact = models.resolve(str(tmp_path))
    assert artifact.format == "hf_causal_lm" and artifact.meta["kind"] == "generate"
    assert (artifact.meta["layers"], artifact.meta["kv_heads"], artifact.meta["head_dim"]) == (2, 2, 16)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="holds no weights"):
        models.resolve(str(tmp_path))


@pytest.mark.slow
def test_llm_server_that_dies_mid_run_is_reported(tmp_path, monkeypatch):
    """Killing the server during the load: the entry fails with the log's tail, and nothing is left running."""
    pytest.importorskip("llama_cpp.server.app")
    import signal

    from inferarena.serving import bench, openai, process

    real = openai.run_at

    def kill_then_probe(*args, **kwargs):
        for server in list(process._RUNNING):
            os.killpg(server.pid, signal.SIGKILL)
        return real(*args, **kwargs)

    monkeypatch.setattr(openai, "run_at", kill_then_probe)
    config = bench.ServeBenchConfig(
        model="smollm2", probe_ms=500, max_probes=2, client_threads=2, workload=WorkloadConfig(num_samples=8),
        generation=GenerationConfig(prompt_tokens=LengthDist(median=16, min=8, max=24),
                                    output_tokens=LengthDist(median=4, min=4, max=4)))
    [entry] = bench.serve_bench(config, tmp_path / "cache", tmp_path).servers
    assert entry.status == "failed" and "died during the load" in entry.error, entry
    assert not process._RUNNING


@pytest.mark.native
def test_gguf_quantize_reports_what_llama_cpp_wrote(tmp_path, smollm2, llama):
    """Requantizing the Q4_1 source: the report says the weights come from Q4_1, and k-quants show their
    fallbacks on SmolLM2's 576-wide rows."""
    from inferarena.passes.gguf import GGUFQuantize

    built = GGUFQuantize().run(smollm2, GGUFQuantize.Config(type="q4_k_m"), tmp_path, None)
    report = built.meta["pass_report"]
    assert report["source_type"] == "q4_1" and "dequantized q4_1" in report["note"]
    assert "q4_k" in report["tensor_types"] and "k-quants need rows" in report["note"]
    assert built.meta["layers"] == 30 and built.path.stat().st_size > 50e6
