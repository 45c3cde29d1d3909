"""Test-time methods for causal LMs (passes/decoding.py): prompt-lookup speculation is lossless and counted,
GRIFFIN slices the FFNs from the prompt, hyper-GRIFFIN learns the slicing, and grounded prompts copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferarena import models, plan, workloads
from inferarena.artifacts import Artifact
from inferarena.config import GenerationConfig, LengthDist, RunConfig, WorkloadConfig
from inferarena.errors import ModelError
from inferarena.hardware import host
from inferarena.passes.base import PassContext

pytest.importorskip("transformers")
pytest.importorskip("llama_cpp")

LOOKUP = {"method": "prompt_lookup", "num_tokens": 6, "max_ngram": 2}


@pytest.fixture(scope="module")
def smollm2():
    return models.resolve("smollm2")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, smollm2) -> Artifact:
    """A random 2-layer Llama with SmolLM2's tokenizer: the transformers paths in a second."""
    import torch
    import transformers

    from inferarena.models.causal_lm import causal_lm_artifact

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = transformers.LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(folder)
    shutil.copy(smollm2.meta["tokenizer"], folder / "tokenizer.json")
    return causal_lm_artifact(folder, name="tiny-llama")


def _marked(artifact: Artifact, decoding: dict) -> Artifact:
    return Artifact(artifact.path, artifact.format, {**artifact.meta, "decoding": decoding})


def _session(artifact, runtime="transformers"):
    from inferarena import runtimes

    cls = runtimes.get(runtime)
    return cls().load(artifact, "fp32", cls.validate_knobs({"threads": 1}), {"input_ids": [1, 512]})


def test_prompt_lookup_is_lossless_and_counts_its_drafts(tiny_llama, one_thread):
    prompt = list(range(1000, 1020)) * 3  # repeats: the n-gram lookup finds drafts
    plain = _session(tiny_llama).generate(prompt, 24)
    session = _session(_marked(tiny_llama, LOOKUP))
    seen: list[int] = []
    got = session.generate(prompt, 24, on_token=seen.append)
    assert got == plain and seen == plain  # greedy verification: the plain tokens, each reported once
    stats = session.adaptive_stats(reset=True)
    assert stats["method"] == "prompt_lookup" and stats["steps"] >= 1
    assert 0 <= stats["acceptance_rate"] <= 1 and 1 <= stats["tokens_per_step"] <= 1 + LOOKUP["num_tokens"]
    assert session.adaptive_stats() is None  # reset


@pytest.mark.native
def test_llama_cpp_prompt_lookup_counts_drafts(smollm2):
    prompt = [504, 3575, 282, 4649, 314] * 6
    session = _session(_marked(smollm2, LOOKUP), "llama_cpp")
    out = session.generate(prompt, 16)
    assert len(out) == 16
    stats = session.adaptive_stats(reset=True)
    assert stats and stats["draft_tokens_per_step"] > 0 and 0 <= stats["acceptance_rate"] <= 1


@pytest.mark.native
def test_draft_model_drafts_from_a_cheaper_build(smollm2, tmp_path):
    from inferarena import passes

    steps = (("gguf_quantize", json.dumps({"type": "f16"})),
             ("speculative_decoding", json.dumps({"method": "draft_model", "num_tokens": 3, "draft_type": "q4_0"})))
    built, _ = passes.apply(steps, smollm2, tmp_path, None)
    assert built.meta["decoding"]["draft_type"] == "q4_0" and (built.path.parent / "draft.gguf").is_file()
    session = _session(built, "llama_cpp")
    assert len(session.generate([504, 3575, 282, 4649, 314], 12)) == 12
    stats = session.adaptive_stats()
    assert stats["method"] == "draft_model" and stats["draft_tokens_per_step"] == 3
    session.close()


def test_runtimes_refuse_a_decoding_they_cannot_run(tiny_llama, smollm2):
    with pytest.raises(ModelError, match="cannot decode with 'griffin'"):
        _session(_marked(smollm2, {"method": "griffin", "keep": 0.5}), "llama_cpp")
    with pytest.raises(ModelError, match="cannot decode with 'medusa'"):
        _session(_marked(tiny_llama, {"method": "medusa"}))


def test_griffin_keeping_every_neuron_changes_nothing(tiny_llama, one_thread):
    prompt = list(range(2000, 2030))
    plain = _session(tiny_llama)
    full = _session(_marked(tiny_llama, {"method": "griffin", "keep": 1.0}))
    assert full.generate(prompt, 12) == plain.generate(prompt, 12)
    text = list(range(3000, 3040))
    assert np.allclose(full.token_logprobs(text), plain.token_logprobs(text), atol=1e-4)
    half = _session(_marked(tiny_llama, {"method": "griffin", "keep": 0.5}))
    assert len(half.generate(prompt, 12)) == 12
    stats = half.adaptive_stats()
    assert stats["ffn_kept_ratio"] == 0.5 and 0 < stats["active_params_ratio"] < 1 and stats["controller_ms"] > 0
    assert half.griffin.modules[0].sliced[0].shape == (64, 64)  # gate rows: half of 128 neurons


def test_hyper_griffin_trains_on_calibration_prompts_and_runs(tiny_llama, tmp_path, one_thread):
    from inferarena.passes.decoding import HyperGriffin, HyperGriffinConfig

    generation = GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48),
                                  output_tokens=LengthDist(median=8, min=8, max=8), perplexity_tokens=64)
    workload = workloads.build(tiny_llama, WorkloadConfig(num_samples=40), generation)
    context = PassContext(workload, None, list(range(8)), threads=1, fingerprint="test")
    config = HyperGriffinConfig(hidden=16, calibration_prompts=24, steps=30)
    built = HyperGriffin().run(tiny_llama, config, tmp_path, context)
    report = built.meta["pass_report"]["hyper_griffin"]
    assert built.meta["decoding"] == {"method": "hyper_griffin", "keep": 0.5, "hidden": 16}
    assert report["fit_prompts"] + report["validation_prompts"] + report["holdout_prompts"] == 24
    assert 1 <= report["best_step"] <= report["stopped_at_step"] <= 30 and report["validation_bce"] > 0
    # fit and held-out perplexity side by side, and GRIFFIN's own on the held-out prompts at the same keep share
    for key in ("fit_ppl_increase_pct", "holdout_ppl_increase_pct", "griffin_holdout_ppl_increase_pct"):
        assert np.isfinite(report[key]), key
    assert report["ppl_keep"] == 0.5
    assert 0 <= report["overlap_with_griffin_holdout"] <= 1 and 0 <= report["overlap_of_one_static_set_holdout"] <= 1
    session = _session(built)
    assert len(session.generate(workload.prompt(0), 8)) == 8
    assert session.adaptive_stats()["method"] == "hyper_griffin"
    assert np.isfinite(session.token_logprobs(workload.perplexity_text)).all()


def test_griffin_runs_under_torchao_int8_weights(tiny_llama, tmp_path, one_thread):
    pytest.importorskip("torchao")
    from inferarena import passes

    quantize = ("torchao_quantize", json.dumps({"scheme": "int8_weight_only"}))
    static, _ = passes.apply((quantize,), tiny_llama, tmp_path, None)
    assert static.format == "hf_causal_lm" and (static.path / "torchao.json").is_file()
    int8 = _session(static)
    assert int8.info["torchao"] == "int8_weight_only"
    assert int8.weight_bytes < _session(tiny_llama).weight_bytes  # Linear weights counted as int8 data and scales
    prompt = list(range(2000, 2030))
    full, _ = passes.apply((quantize, ("griffin", json.dumps({"keep": 1.0}))), tiny_llama, tmp_path, None)
    assert _session(full).generate(prompt, 12) == int8.generate(prompt, 12)  # every neuron kept: the INT8 model
    half, _ = passes.apply((quantize, ("griffin", json.dumps({"keep": 0.5}))), tiny_llama, tmp_path, None)
    session = _session(half)
    assert len(session.generate(prompt, 12)) == 12
    gate, up, down = session.griffin.modules[0].sliced
    assert type(gate).__name__ == "Int8Tensor" and gate.shape == (64, 64) and down.shape == (64, 64)
    assert np.isfinite(session.token_logprobs(list(range(3000, 3040)))).all()
    with pytest.raises(Exception, match="torchao quantization exists only in torch"):
        passes.apply((quantize, ("ov_genai_export", "{}")), tiny_llama, tmp_path, None)


def test_griffin_perplexity_budget_picks_the_smallest_keep_that_meets_it(tiny_llama, tmp_path, one_thread):
    from inferarena.passes.decoding import KEEP_GRID, Griffin, GriffinConfig

    generation = GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48),
                                  output_tokens=LengthDist(median=8, min=8, max=8), perplexity_tokens=64)
    workload = workloads.build(tiny_llama, WorkloadConfig(num_samples=40), generation)
    context = PassContext(workload, None, list(range(8)), threads=1, fingerprint="test")
    loose = Griffin().run(tiny_llama, GriffinConfig(keep=0.5, max_ppl_increase_pct=1e6), tmp_path / "a", context)
    report = loose.meta["pass_report"]["griffin"]
    assert loose.meta["decoding"] == {"method": "griffin", "keep": 0.5} and report["met"]
    assert list(report["ppl_increase_pct_by_keep"]) == ["0.5"]  # met at once: no larger share tried
    tight = Griffin().run(tiny_llama, GriffinConfig(keep=0.5, max_ppl_increase_pct=1e-9), tmp_path / "b", context)
    report = tight.meta["pass_report"]["griffin"]
    tried = {float(k): v for k, v in report["ppl_increase_pct_by_keep"].items()}
    assert tight.meta["decoding"]["keep"] == report["keep"] and report["keep"] in KEEP_GRID
    assert report["met"] == (tried[report["keep"]] <= 1e-9)
    assert report["met"] or (report["keep"] == max(KEEP_GRID) and len(tried) == len(KEEP_GRID))


def test_grounded_prompts_end_with_the_instruction(smollm2):
    from tokenizers import Tokenizer

    from inferarena.workloads.prompts import GROUNDED_INSTRUCTION

    generation = GenerationConfig(prompts="grounded", prompt_tokens=LengthDist(median=24, min=8, max=48))
    workload = workloads.build(smollm2, WorkloadConfig(num_samples=8), generation)
    suffix = Tokenizer.from_file(smollm2.meta["tokenizer"]).encode(GROUNDED_INSTRUCTION, add_special_tokens=False).ids
    assert all(p[-len(suffix):] == suffix for p in workload.prompts)
    assert workload.describe()["prompts"] == "grounded"


def test_presets_plan_on_the_runtimes_that_run_them(smollm2):
    config = RunConfig.parse({"model": "smollm2", "runtimes": [{"name": "llama_cpp"}, {"name": "transformers"}],
                              "pipelines": [{"name": n, "passes": p, "runtimes": r} for n, p, r in _presets()]},
                             source="test")
    generation = GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48))
    workload = workloads.build(smollm2, WorkloadConfig(num_samples=8), generation)
    specs, notes = plan.plan(config, smollm2, workload, host())
    names = {s.name for s in specs}
    # llama.cpp runs the GGUF in its own type (q4_1); transformers dequantizes it to FP32.
    assert {"llama_cpp/q4_1@prompt-lookup", "transformers/fp32@prompt-lookup", "transformers/fp32@griffin",
            "transformers/fp32@hyper-griffin"} <= names
    assert not any(n.startswith("llama_cpp") and "griffin" in n for n in names)
    lookup = next(s for s in specs if s.name == "transformers/fp32@prompt-lookup")
    assert [step for step, _ in lookup.steps] == ["speculative_decoding", "gguf_to_hf"]


def _presets():
    from inferarena.config import PRESET_RUNTIMES, PRESETS

    return [(n, PRESETS[n], PRESET_RUNTIMES[n]) for n in ("prompt-lookup", "griffin", "hyper-griffin")]


def test_conversion_keeps_the_decoding_mark(smollm2, tmp_path):
    from inferarena import passes

    steps = (("speculative_decoding", json.dumps(LOOKUP)), ("gguf_to_hf", "{}"))
    built, applied = passes.apply(steps, smollm2, tmp_path, None)
    assert built.format == "hf_causal_lm" and built.meta["decoding"] == LOOKUP
    assert [a.name for a in applied] == ["speculative_decoding", "gguf_to_hf"]
    assert built.lineage[-2:] == tuple(applied) and applied[1].parent == applied[0].output == str(applied[0].output)


@pytest.mark.slow
def test_run_llm_test_time_methods_end_to_end(tmp_path):
    """The Done-when command, cut down: the three presets on transformers and llama.cpp, fidelity and
    adaptive.* in the leaderboard and the --json."""
    config = tmp_path / "llm.yaml"
    config.write_text(
        "model: smollm2\nquick: true\nrounds: {count: 1}\nscenarios: [llm_single_stream]\n"
        "workload: {num_samples: 48, eval_samples: 8}\n"
        "generation: {prompts: grounded, prompt_tokens: {median: 32, min: 16, max: 64}, "
        "output_tokens: {median: 16, min: 16, max: 16}, fidelity_prompts: 3, fidelity_tokens: 16, "
        "perplexity_tokens: 64}\n"
        "runtimes: [{name: llama_cpp}, {name: transformers, precisions: [fp32]}]\n")
    out = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "inferarena", "run", "--config", str(config), "--pipelines",
                           "prompt-lookup,griffin,hyper-griffin", "--db", str(tmp_path / "r.db"), "--json", str(out),
                           "--no-report"], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "220"}, cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    assert {"transformers/fp32@prompt-lookup", "llama_cpp/q4_1@prompt-lookup", "transformers/fp32@griffin",
            "transformers/fp32@hyper-griffin"} <= set(variants)
    for name in ("transformers/fp32@prompt-lookup", "llama_cpp/q4_1@prompt-lookup"):
        assert variants[name]["status"] == "ok", variants[name]["error"]
        assert 0 <= variants[name]["metrics"]["adaptive.acceptance_rate"] <= 1
    assert variants["transformers/fp32@prompt-lookup"]["metrics"]["fidelity.token_agreement"] == 1.0
    for name in ("transformers/fp32@griffin", "transformers/fp32@hyper-griffin"):
        m = variants[name]["metrics"]
        assert m["adaptive.active_params_ratio"] < 1 and m["adaptive.controller_ms"] > 0 and m["fidelity.perplexity"] > 1
    assert "draft tokens accepted" in done.stdout or "accepted" in done.stdout


def test_calibration_cache_key_follows_the_prompts():
    from inferarena.arena import _fingerprint

    default = RunConfig.parse({}, source="test")
    grounded = RunConfig.parse({"generation": {"prompts": "grounded"}}, source="test")
    assert _fingerprint(default, 8) != _fingerprint(grounded, 8)
    assert _fingerprint(default, 8) == f"{default.workload.model_dump_json()}|8"  # encoder caches stay valid


# Draft-model speculation with another model (issue 41): the vocabulary check, the cache key, the preset.

DRAFT_PAIR = ("qwen-coder-1.5b", "qwen-coder-0.5b")


def _bundled(name: str) -> Artifact:
    from inferarena.errors import RuntimeUnavailable

    try:
        return models.resolve(name)
    except RuntimeUnavailable as exc:
        pytest.skip(f"{name} is not installed ({exc.problem})")


def _fake_gguf(path: Path, tokens: list[str]) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("fake")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))  # an array after the tokens: the reader stops before it
    writer.add_block_count(1)
    writer.add_tensor("weight", np.arange(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_vocab_tells_token_strings_apart(tmp_path):
    from inferarena.errors import ModelError as Unreadable
    from inferarena.passes.decoding import gguf_vocab

    base = gguf_vocab(_fake_gguf(tmp_path / "a.gguf", ["<s>", "a", "b", "ab"]))
    assert base["tokens"] == 4 and base["model"] == "gpt2"
    assert gguf_vocab(_fake_gguf(tmp_path / "same.gguf", ["<s>", "a", "b", "ab"])) == base
    renamed = gguf_vocab(_fake_gguf(tmp_path / "renamed.gguf", ["<s>", "a", "b", "ba"]))
    assert renamed["tokens"] == 4 and renamed["sha256"] != base["sha256"]
    assert gguf_vocab(_fake_gguf(tmp_path / "split.gguf", ["<s>", "a", "ba", "b"]))["sha256"] != base["sha256"]
    (tmp_path / "not.gguf").write_bytes(b"not a gguf at all" * 4)
    with pytest.raises(Unreadable, match="cannot be read"):
        gguf_vocab(tmp_path / "not.gguf")


def test_a_draft_with_another_tokenizer_is_refused(smollm2, tmp_path):
    from inferarena import passes
    from inferarena.errors import ConfigError
    from inferarena.passes.decoding import SpeculativeConfig

    _bundled(DRAFT_PAIR[1])
    step = ("speculative_decoding", json.dumps({"method": "draft_model", "draft": DRAFT_PAIR[1]}))
    with pytest.raises(ConfigError, match=r"does not share the target's tokenizer: 151,936 .* against the target's "
                                          r"49,152") as refused:
        passes.apply((step,), smollm2, tmp_path, None)
    assert "qwen-coder-0.5b drafts for qwen-coder-1.5b" in refused.value.fix
    assert not list(tmp_path.glob("speculative_decoding/*/artifact.json"))  # nothing cached
    with pytest.raises(ValueError, match="method prompt_lookup does not use"):
        SpeculativeConfig(draft=DRAFT_PAIR[1])


def test_the_draft_file_is_part_of_the_cache_key(smollm2, tmp_path, monkeypatch):
    """A draft named by path, swapped for other bytes under the same name, builds anew; the same file is reused."""
    from inferarena.passes.decoding import SpeculativeConfig, SpeculativeDecoding

    real = models.resolve
    monkeypatch.setattr(models, "resolve", lambda spec: (Artifact(Path(spec), "gguf", {"name": "copy", "precision": "q4_1"})
                                                         if spec.endswith(".gguf") else real(spec)))
    draft = tmp_path / "drafts" / "draft.gguf"
    draft.parent.mkdir()
    shutil.copyfile(smollm2.path, draft)
    config = SpeculativeConfig(method="draft_model", draft=str(draft), num_tokens=3)
    first = SpeculativeDecoding().cached_run(smollm2, config, tmp_path / "cache")
    again = SpeculativeDecoding().cached_run(smollm2, config, tmp_path / "cache")
    assert not first.meta["cached"] and again.meta["cached"] and again.path == first.path
    report = first.meta["pass_report"]["draft_model"]
    assert report["vocab_check"] == {"same": True, "tokens": 49152, "sha256": report["vocab_check"]["sha256"]}
    assert report["draft_mb"] == round(draft.stat().st_size / 1e6, 1) and report["draft_name"] == "copy"
    assert first.meta["decoding"]["draft_file"] == "draft.gguf" and (first.path.parent / "draft.gguf").is_file()
    data = bytearray(draft.read_bytes())
    data[-1] ^= 0xFF  # the last tensor byte: the same vocabulary, other weights
    draft.unlink()
    draft.write_bytes(bytes(data))
    swapped = SpeculativeDecoding().cached_run(smollm2, config, tmp_path / "cache")
    assert not swapped.meta["cached"] and swapped.path != first.path
    assert swapped.meta["pass_report"]["draft_model"]["draft_sha256"] != report["draft_sha256"]
    assert (swapped.path.parent / "draft.gguf").read_bytes()[-1] == data[-1]


def test_draft_model_preset_resolves_and_plans(smollm2):
    from inferarena.config import PRESETS, preset
    from inferarena.passes.decoding import SpeculativeConfig

    spec = preset("draft-model")
    assert [p.name for p in spec.passes] == ["speculative_decoding"]
    config = SpeculativeConfig.model_validate(spec.passes[0].config)
    assert config.method == "draft_model" and config.draft == DRAFT_PAIR[1] and 2 <= config.num_tokens <= 8
    assert PRESETS["draft-model"][0]["config"]["draft"] == DRAFT_PAIR[1]
    assert config.num_tokens in SpeculativeConfig.model_fields["num_tokens"].json_schema_extra["space"]
    run = RunConfig.parse({"model": "smollm2", "runtimes": [{"name": "llama_cpp"}],
                           "pipelines": [{"name": "draft-model", "passes": PRESETS["draft-model"]}]}, source="test")
    generation = GenerationConfig(prompt_tokens=LengthDist(median=24, min=8, max=48))
    specs, _notes = plan.plan(run, smollm2, workloads.build(smollm2, WorkloadConfig(num_samples=8), generation), host())
    planned = next(s for s in specs if s.name == "llama_cpp/q4_1@draft-model")
    assert [name for name, _ in planned.steps] == ["speculative_decoding"]  # the vocabulary is checked when built


@pytest.mark.native
def test_llama_cpp_refuses_a_draft_of_another_vocabulary(smollm2):
    draft = _bundled(DRAFT_PAIR[1])
    marked = _marked(smollm2, {"method": "draft_model", "num_tokens": 2, "draft_file": str(draft.path)})
    with pytest.raises(ModelError, match="the draft model has 151936 tokens and the target 49152"):
        _session(marked, "llama_cpp")


@pytest.mark.native
@pytest.mark.slow
def test_qwen_coder_pair_drafts_losslessly(tmp_path):
    """The preset on the real pair: built (vocabulary checked), run greedy, the 1.5B's own tokens."""
    from inferarena import passes
    from inferarena.config import PRESETS

    target = _bundled(DRAFT_PAIR[0])
    _bundled(DRAFT_PAIR[1])
    steps = tuple((p["name"], json.dumps(p["config"])) for p in PRESETS["draft-model"])
    built, _ = passes.apply(steps, target, tmp_path, None)
    assert built.meta["pass_report"]["draft_model"]["vocab_check"]["tokens"] == 151936
    prompt = [151644, 872, 198, 7985, 264, 13027, 729, 429, 12341, 421, 264, 1372, 374, 10250, 13, 151645, 198,
              151644, 77091, 198]  # "<|im_start|>user\nWrite a Python function that checks if a number is prime."
    plain = _session(target, "llama_cpp")
    expected = plain.generate(prompt, 32)
    plain.close()
    session = _session(built, "llama_cpp")
    assert session.generate(prompt, 32) == expected
    stats = session.adaptive_stats()
    assert stats["method"] == "draft_model" and stats["acceptance_rate"] > 0.3
    session.close()


def test_the_hypernetwork_stops_when_held_out_loss_stops_improving():
    """Fit targets that the validation set contradicts: its loss only rises, so training stops after
    `patience` checks and keeps the weights of the best check (the first)."""
    import torch

    from inferarena.adaptive import griffin
    from inferarena.passes.decoding import HyperGriffinConfig, _fit_early_stopped

    torch.manual_seed(0)
    x = torch.randn(16, 8)
    y = (torch.rand(16, 2 * 4) > 0.5).float()
    net = griffin.hyper_network(8, 2, 4, 16)
    config = HyperGriffinConfig(hidden=16, steps=500, check_every=5, patience=3, weight_decay=0.0)
    out = _fit_early_stopped(net, x, y, x, 1 - y, config)
    assert out["early_stopped"] and out["stopped_at_step"] == out["best_step"] + 3 * 5 and out["best_step"] == 5
    best = torch.nn.BCEWithLogitsLoss()(net(x), 1 - y).item()
    assert abs(best - out["validation_bce"]) < 1e-4  # the best weights are the ones kept
