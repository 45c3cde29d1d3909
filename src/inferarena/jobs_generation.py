"""Worker jobs for generative models (runtimes of kind "generate"): the FP32 reference, and measuring
a variant (fidelity, warm-up, the llm_* scenarios, the decode roofline).

The reference is the source model dequantized to FP32 on the first generative runtime that computes
in FP32 (transformers), with whatever conversion it needs (a GGUF goes through `gguf_to_hf`; the
build is cached and shared with the variants that need it).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from inferarena import passes, registry
from inferarena.artifacts import Artifact
from inferarena.errors import RuntimeUnavailable
from inferarena.evaluators.generation import GenerationFidelity, perplexity, score
from inferarena.hardware import host
from inferarena.scenarios.base import Estimates, ScenarioContext
from inferarena.trackers import bandwidth
from inferarena.trackers.energy import EnergyMeter
from inferarena.trackers.memory import MemoryTracker
from inferarena.workloads.prompts import PromptWorkload

# What a generative run measures when the config names only batch-at-a-time scenarios (the default).
DEFAULT_SCENARIOS = ("llm_single_stream", "llm_offline", "llm_server")


def scenarios_for(names: list[str]) -> list[str]:
    chosen = [n for n in names if registry.load(registry.SCENARIOS, n).kind == "generate"]
    return chosen or list(DEFAULT_SCENARIOS)


def reference_runtime(artifact: Artifact) -> tuple[str, tuple[str, ...]]:
    """The first installed generative runtime that computes in FP32, and the conversions it needs."""
    from inferarena import runtimes
    from inferarena.errors import ModelError

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


def reference(artifact: Artifact, workload: PromptWorkload, eval_indices: list[int], threads: int, generation,
              cache_dir: Path, out: Path) -> str:
    """Greedy tokens of the fidelity prompts and the perplexity of the held-out text, in FP32."""
    from inferarena.jobs import build

    name, conversion = reference_runtime(artifact)
    if conversion:
        artifact, _ = build(tuple((c, "{}") for c in conversion), artifact, cache_dir, None)
    runtime = registry.load(registry.RUNTIMES, name)
    session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": threads}),
                             workload.input_shapes(workload.strategies[0]))
    prompts = eval_indices[: generation.fidelity_prompts]
    tokens = [session.generate(workload.prompt(i), generation.fidelity_tokens) for i in prompts]
    ppl = perplexity(session.token_logprobs(workload.perplexity_text)) if len(workload.perplexity_text) > 1 else None
    out.write_text(json.dumps({"runtime": name, "prompts": prompts, "tokens": tokens, "perplexity": ppl}))
    return str(out)


def fidelity(session, workload: PromptWorkload, reference_path: str) -> GenerationFidelity:
    ref = json.loads(Path(reference_path).read_text())
    outputs = [session.generate(workload.prompt(i), len(want)) for i, want in zip(ref["prompts"], ref["tokens"])]
    ppl = None
    if ref.get("perplexity") is not None:
        ppl = perplexity(session.token_logprobs(workload.perplexity_text))
    return score(outputs, ref["tokens"], ppl, ref.get("perplexity"))


def measure(job) -> dict[str, Any]:
    """Load the variant, check its tokens against the reference, then run the generation scenarios."""
    from inferarena.jobs import _run_scenario

    spec, config, workload = job.spec, job.config, job.workload
    runtime = registry.load(registry.RUNTIMES, spec.runtime)
    started = time.perf_counter()
    with MemoryTracker() as memory:
        session = runtime().load(job.artifact, spec.load_precision, runtime.validate_knobs(spec.knobs),
                                 workload.input_shapes(workload.strategies[0]))
        load_s = time.perf_counter() - started
        if job.first_round:
            found = job.first_round["fidelity"]
        else:
            found = fidelity(session, workload, job.reference_path).as_dict()
        info = {**session.info, "weight_bytes": session.weight_bytes}
        result: dict[str, Any] = {"fidelity": found, "session_info": info, "load_s": round(load_s, 3),
                                  "scenarios": [], "task": []}
        energy = EnergyMeter(host(), config.energy.tdp_w, config.energy.tdp_threads, config.energy.idle_s,
                             device=runtime.devices[0])
        estimates = _estimates(session, workload, job.first_round)
        ctx = ScenarioContext(session=session, workload=workload, strategy=workload.strategies[0],
                              batch_size=spec.batch_size or config.workload.batch_size, quick=config.quick,
                              settings=config.loadgen, estimates=estimates, energy=energy, price=job.price,
                              rounds=config.rounds.planned(config.quick), generation=config.generation)
        result["estimates"] = asdict(estimates)
        for name in scenarios_for(config.scenarios):
            measured = asdict(_run_scenario(name, ctx))
            measured["metrics"].update(_roofline(measured["metrics"], session, job))
            result["scenarios"].append(measured)
        session.close()
    result["memory"] = memory.result.as_dict()
    return {**result, "status": "ok", "error": None}


def _estimates(session, workload: PromptWorkload, first_round: dict | None) -> Estimates:
    """One typical request, timed: sizes LoadGen's schedule (request time, requests/s)."""
    index = int(np.argsort([len(p) for p in workload.prompts])[len(workload) // 2])
    if first_round and first_round.get("estimates"):
        session.generate(workload.prompt(index), 4)  # warm only
        return Estimates(**first_round["estimates"])
    session.generate(workload.prompt(index), 4)
    start = time.perf_counter()
    session.generate(workload.prompt(index), workload.output_tokens(index))
    seconds = time.perf_counter() - start
    return Estimates(latency_s_single=seconds, latency_s_multi=seconds, throughput_sps=1.0 / seconds)


def _roofline(metrics: dict, session, job) -> dict[str, float]:
    rate, bw = metrics.get("decode_tokens_per_s"), job.bandwidth_gb_per_s
    if not rate or not bw:
        return {}
    workload = job.workload
    mean_context = float(np.mean([len(p) for p in workload.prompts]) + np.mean(workload.outputs) / 2)
    kv = bandwidth.kv_bytes_per_token(job.artifact.meta, getattr(session, "kv_bytes_per_value", 2))
    return {k: v for k, v in bandwidth.roofline(rate, session.weight_bytes, kv, mean_context, bw).items()
            if v is not None}
