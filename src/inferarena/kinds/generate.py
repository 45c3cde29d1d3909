"""Language models that generate token streams (GGUF, *ForCausalLM folders): the `generate` kind.

The reference is the source model dequantized to FP32 on the first generative runtime that computes
in FP32 (transformers), with whatever conversion it needs (a GGUF goes through `gguf_to_hf`; the
build is cached and shared with the variants that need it). Variants are scored by greedy-token
agreement and perplexity and never failed on fidelity: a lossy LLM's speed is worth seeing next to
how far it drifts. They are measured by the llm_* scenarios, with the decode roofline on memory
bandwidth.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from inferarena import passes, registry
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.kinds.base import Column, Constraint, Figure, Kind, Measures, Plot, Profile
from inferarena.scenarios.base import Estimates

# What a generative run measures when the config names only batch-at-a-time scenarios (the default).
DEFAULT_SCENARIOS = ("llm_single_stream", "llm_offline", "llm_server")


class Generate(Kind, Measures):
    name = "generate"
    profiles = {
        "latency": Profile("latency", "llm_single_stream.latency_ms_p90", "request time p90 (single stream)",
                           "llm_single_stream", 90.0, "lowest single-stream request time p90, prefill plus decode"),
        "throughput": Profile("throughput", "llm_offline.tokens_per_s", "Offline output tokens/s", None, None,
                              "highest Offline output tokens/s"),
        "balanced": Profile("balanced", "balanced_score", "balanced score", None, None,
                            "best geometric mean of request time p90 and output tokens/s, each relative to the best"),
        "small": Profile("small", "model_mb", "model size on disk", None, None,
                         "smallest model on disk; ties broken by p90 latency"),
        "energy": Profile("energy", "llm_offline.energy_j_per_token", "Offline energy per output token", None, None,
                          "least energy per output token in Offline"),
        "cost": Profile("cost", "llm_offline.cost_usd_per_1m_tokens", "Offline cost per 1M output tokens", None, None,
                        "lowest cost per million output tokens in Offline"),
    }
    trade_offs = (Figure("llm_single_stream.latency_ms_p90", "request time p90"),
                  Figure("llm_offline.tokens_per_s", "output tokens/s"),
                  Figure("fidelity.token_agreement", "token agreement"), Figure("memory.peak_rss_mb", "peak RSS"))
    constraints = {
        "max_p99_ms": Constraint("llm_single_stream.latency_ms_p99", "max", "request time p99"),
        "max_p90_ms": Constraint("llm_single_stream.latency_ms_p90", "max", "request time p90"),
        "min_cos": Constraint("fidelity.cos_min", "min", "cos_min"),
        "min_throughput": Constraint("llm_offline.tokens_per_s", "min", "Offline output tokens/s"),
        "max_memory_mb": Constraint("memory.peak_rss_mb", "max", "peak RSS"),
    }
    judged_by = {"latency": ("llm_single_stream",), "throughput": ("llm_offline",),
                 "balanced": ("llm_single_stream", "llm_offline"), "small": ("llm_single_stream",),
                 "energy": ("llm_offline",), "cost": ("llm_offline",)}
    search_batch_sizes = (1, 4, 8)  # requests generated together in Offline (runtimes that batch do)
    fidelity_title = "Variants — fidelity against the FP32 reference"
    fidelity_columns = (Column("token_agreement", "token agree"), Column("exact_match", "exact"),
                        Column("first_divergence_mean", "1st diff at", of="tokens_per_prompt"),
                        Column("perplexity", "ppl"), Column("perplexity_delta_pct", "Δppl %"))
    pareto_title = ("Pareto front — no other variant is better on request time p90, tokens/s and token agreement "
                    "at once")
    pareto_columns = (Figure("llm_single_stream.latency_ms_p90", "request p90 ms"),
                      Figure("llm_offline.tokens_per_s", "tok/s"), Figure("fidelity.token_agreement", "token agree"))
    plots = (Plot("generation.decode_tokens_per_s", "fidelity.token_agreement", "decode tokens/s (single stream)",
                  "greedy-token agreement with FP32", "Decode speed vs fidelity"),
             Plot("generation.ttft_ms_p50", "generation.tpot_ms_p50", "TTFT p50 (ms)", "TPOT p50 (ms)",
                  "Time to first token vs time per output token"))
    serving = "openai"
    needs_bandwidth = True

    def scenarios(self, requested):
        chosen = [n for n in requested if registry.load(registry.SCENARIOS, n).kind == self.name]
        return chosen or list(DEFAULT_SCENARIOS)

    def fidelity_key(self, variants):
        return "token_agreement", "token agree"

    def reference_job(self, artifact, workload, eval_indices, threads, work, cache_dir, evaluators, generation):
        reference_runtime(artifact)  # a missing runtime is the user's error, before any worker
        return reference, (artifact, workload, eval_indices, threads, generation, cache_dir, work / "reference.json")

    def reference_environment(self, reference_path):
        ref = json.loads(Path(reference_path).read_text())
        return {"generation_reference": {"runtime": ref["runtime"], "precision": "fp32", "perplexity": ref["perplexity"]}}

    # Measured by jobs.measure: these are its steps for a text generator.
    def strategy(self, spec, workload):
        return workload.strategies[0]

    def check(self, session, job, strategy):
        # What an adaptive decoding did on the fidelity prompts (drafts accepted, FFN kept) is its adaptive.*
        found = fidelity(session, job.workload, job.reference_path).as_dict()
        return found, session.adaptive_stats(reset=True)

    def session_info(self, session):
        return {**session.info, "weight_bytes": session.weight_bytes}

    def estimates(self, session, job, strategy):
        return _estimates(session, job.workload, job.first_round)

    def context(self, job):
        return {"generation": job.settings.generation}

    def after_scenario(self, metrics, session, job):
        return _roofline(metrics, session, job)


def reference_runtime(artifact) -> tuple[str, tuple[str, ...]]:
    """The first installed generative runtime that computes in FP32, and the conversions it needs."""
    from inferarena import runtimes

    for name in registry.RUNTIMES:
        runtime = runtimes.get(name)
        if runtime.kind != "generate" or "fp32" not in runtime.precisions or not runtime.available():
            continue
        try:
            return name, passes.route(artifact.format, runtime.formats)
        except ModelError:
            continue
    raise RuntimeUnavailable(f"no installed runtime computes an FP32 reference for a {artifact.format} model",
                             "pip install 'inferarena[llm]' (transformers and torch)")


def reference(artifact, workload, eval_indices: list[int], threads: int, generation, cache_dir: Path, out: Path) -> str:
    """Greedy tokens of the fidelity prompts and the perplexity of the held-out text, in FP32."""
    from inferarena.evaluators.generation import perplexity

    name, conversion = reference_runtime(artifact)
    if conversion:
        artifact, _ = passes.apply(tuple((c, "{}") for c in conversion), artifact, cache_dir, None)
    runtime = registry.load(registry.RUNTIMES, name)
    session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": threads}),
                             workload.input_shapes(workload.strategies[0]))
    prompts = eval_indices[: generation.fidelity_prompts]
    tokens = [session.generate(workload.prompt(i), generation.fidelity_tokens) for i in prompts]
    ppl = perplexity(session.token_logprobs(workload.perplexity_text)) if len(workload.perplexity_text) > 1 else None
    out.write_text(json.dumps({"runtime": name, "prompts": prompts, "tokens": tokens, "perplexity": ppl}))
    return str(out)


def fidelity(session, workload, reference_path: str):
    from inferarena.evaluators.generation import perplexity, score

    ref = json.loads(Path(reference_path).read_text())
    outputs = [session.generate(workload.prompt(i), len(want)) for i, want in zip(ref["prompts"], ref["tokens"])]
    ppl = None
    if ref.get("perplexity") is not None:
        ppl = perplexity(session.token_logprobs(workload.perplexity_text))
    return score(outputs, ref["tokens"], ppl, ref.get("perplexity"))


def _estimates(session, workload, first_round) -> Estimates:  # first_round: jobs.FirstRound | None
    """One typical request, timed: sizes LoadGen's schedule (request time, requests/s)."""
    index = int(np.argsort([len(p) for p in workload.prompts])[len(workload) // 2])
    if first_round and first_round.estimates:
        session.generate(workload.prompt(index), 4)  # warm only
        return Estimates(**first_round.estimates)
    session.generate(workload.prompt(index), 4)
    start = time.perf_counter()
    session.generate(workload.prompt(index), workload.output_tokens(index))
    seconds = time.perf_counter() - start
    return Estimates(latency_s_single=seconds, latency_s_multi=seconds, throughput_sps=1.0 / seconds)


def _roofline(metrics: dict, session, job) -> dict[str, float]:
    from inferarena.trackers import bandwidth

    rate, bw = metrics.get("decode_tokens_per_s"), job.bandwidth_gb_per_s
    if not rate or not bw:
        return {}
    workload = job.workload
    mean_context = float(np.mean([len(p) for p in workload.prompts]) + np.mean(workload.outputs) / 2)
    kv = bandwidth.kv_bytes_per_token(job.artifact.meta, getattr(session, "kv_bytes_per_value", 2))
    return {k: v for k, v in bandwidth.roofline(rate, session.weight_bytes, kv, mean_context, bw).items()
            if v is not None}
