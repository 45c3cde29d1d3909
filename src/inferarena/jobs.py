"""What a worker process does for one candidate: convert a model, compute the reference, or measure.

Each function runs inside `worker.run_isolated`, so it may import any framework.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferarena import registry
from inferarena.artifacts import Artifact
from inferarena.config import RunConfig, ShapeStrategy
from inferarena.evaluators.fidelity import Fidelity, score
from inferarena.passes.base import PassContext
from inferarena.hardware import host
from inferarena.plan import VariantSpec
from inferarena.runtimes.base import Session
from inferarena.scenarios.base import Estimates, ScenarioContext, ScenarioResult
from inferarena.trackers.cost import Price
from inferarena.trackers.energy import EnergyMeter
from inferarena.trackers.memory import MemoryTracker
from inferarena.workloads.base import Workload


def build(steps: tuple, artifact: Artifact, cache_dir: Path, context: PassContext) -> tuple[Artifact, list[dict]]:
    """Apply each pass in turn, every one cached by content hash; report what ran and what came from cache."""
    applied = []
    for name, config_json in steps:
        pass_cls = registry.load(registry.PASSES, name)
        config = pass_cls.Config.model_validate_json(config_json)
        started = time.perf_counter()
        artifact = pass_cls().cached_run(artifact, config, cache_dir, context)
        applied.append({"pass": name, "config": config.model_dump(mode="json"), "cached": artifact.meta["cached"],
                        "seconds": round(time.perf_counter() - started, 2)})
    return artifact, applied


def outputs(session: Session, workload: Workload, indices: list[int], strategy: ShapeStrategy, batch: int) -> np.ndarray:
    """The primary (first) output for `indices`, one row per sample, in order."""
    step = workload.batch_limit(batch)
    rows = []
    for start in range(0, len(indices), step):
        result = session.predict(workload.collate(indices[start : start + step], strategy))
        rows.append(np.asarray(next(iter(result.values())), dtype=np.float32))
    return np.concatenate(rows)


def reference(runtime_name: str, artifact: Artifact, workload: Workload, indices: list[int], threads: int, out: Path,
              evaluators: tuple[str, ...] = ()) -> str:
    """FP32 outputs of the source model, one sample at a time with the least padding; the FP32 task
    scores go next to them (`reference_task_path`)."""
    runtime = registry.load(registry.RUNTIMES, runtime_name)
    strategy = workload.strategies[-1]
    session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": threads}), workload.input_shapes(strategy))
    np.save(out, outputs(session, workload, indices, strategy, batch=1))
    reference_task_path(out).write_text(json.dumps(task_scores(session, workload, evaluators)))
    return str(out)


def reference_task_path(reference: Path) -> Path:
    return Path(reference).with_suffix(".task.json")


def task_scores(session: Session, workload: Workload, evaluators: tuple[str, ...],
                strategy: ShapeStrategy = ShapeStrategy.dynamic) -> list[dict]:
    """Each evaluator's metric on this session's embeddings; a failure is reported, not raised."""
    from inferarena.evaluators.task import evaluate

    def embed(texts: list[str]) -> np.ndarray:
        return next(iter(session.predict(workload.encode(texts, strategy)).values()))

    scores = []
    for name in evaluators:
        try:
            scores.append(evaluate(registry.load(registry.EVALUATORS, name)(download=False), embed, batch_size=8))
        except Exception as exc:  # one broken metric must not cost the variant its measurements
            scores.append({"name": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return scores


@dataclass
class MeasureJob:
    spec: VariantSpec
    artifact: Artifact
    workload: Workload
    reference_path: str
    eval_indices: list[int]
    config: RunConfig
    price: Price | None = None
    peaks: dict[str, float] = field(default_factory=dict)  # GEMM GFLOP/s by precision
    evaluators: tuple[str, ...] = ()  # task metrics to score (their data already fetched)
    # Later rounds: the first round's fidelity and warm-up estimates (the same model gives the same
    # outputs), so they only warm the session briefly and go straight to the scenarios.
    first_round: dict | None = None
    bandwidth_gb_per_s: float | None = None  # this machine's read bandwidth (generative models' roofline)


def bandwidth(cache_dir: Path, threads: int) -> dict:
    """This machine's memory bandwidth, read and triad (cached per machine); needs torch."""
    from inferarena.trackers import bandwidth as tracker

    return tracker.load_or_measure(cache_dir, host(), threads)


def peaks(cache_dir: Path, threads: int, refresh: bool = False) -> dict:
    """This machine's GEMM peaks (cached per machine); needs torch."""
    from inferarena.trackers import peak

    return peak.load_or_measure(cache_dir, host(), threads, refresh)


def measure(job: MeasureJob) -> dict[str, Any]:
    """Load the variant, check its outputs, then run each LoadGen scenario on it."""
    spec, config, workload = job.spec, job.config, job.workload
    runtime = registry.load(registry.RUNTIMES, spec.runtime)
    if runtime.kind == "generate":
        from inferarena import jobs_generation

        return jobs_generation.measure(job)
    strategy = ShapeStrategy(spec.shape)
    started = time.perf_counter()
    with MemoryTracker() as memory:
        session = runtime().load(job.artifact, spec.load_precision, runtime.validate_knobs(spec.knobs),
                                 workload.input_shapes(strategy))
        load_s = time.perf_counter() - started
        if job.first_round:
            fidelity = Fidelity(**job.first_round["fidelity"])
        else:
            got = outputs(session, workload, job.eval_indices, strategy, config.workload.batch_size)
            fidelity = score(got, np.load(job.reference_path), classes=job.artifact.meta.get("outputs") == "class_logits")
        result: dict[str, Any] = {
            "fidelity": fidelity.as_dict(),
            "session_info": session.info,
            "load_s": round(load_s, 3),
            "scenarios": [],
        }
        mismatch = _mismatch(fidelity, config, lossy=spec.lossy or spec.precision in LOSSY)
        if mismatch:
            return {**result, "status": "failed", "error": f"output mismatch: {mismatch}"}
        result["task"] = task_scores(session, workload, job.evaluators, strategy)
        energy = EnergyMeter(host(), config.energy.tdp_w, config.energy.tdp_threads, config.energy.idle_s,
                             device=runtime.devices[0])
        ctx = ScenarioContext(
            session=session,
            workload=workload,
            strategy=strategy,
            batch_size=spec.batch_size or config.workload.batch_size,
            quick=config.quick,
            settings=config.loadgen,
            estimates=_estimates(session, workload, strategy, config, job.first_round),
            energy=energy,
            price=job.price,
            peak_gflops=job.peaks.get("int8" if spec.precision == "mixed" else spec.precision),
            rounds=config.rounds.planned(config.quick),
        )
        result["estimates"] = asdict(ctx.estimates)
        for name in config.scenarios:
            result["scenarios"].append(asdict(_run_scenario(name, ctx)))
    result["memory"] = memory.result.as_dict()
    return {**result, "status": "ok", "error": None}


def _run_scenario(name: str, ctx: ScenarioContext) -> ScenarioResult:
    scenario = registry.load(registry.SCENARIOS, name)()
    try:
        return scenario.run(ctx)
    except Exception as exc:  # a scenario that breaks is recorded; the others still run
        return ScenarioResult(name, False, f"error: {type(exc).__name__}: {exc}"[:300], "error", {})


LOSSY = ("int8", "int4", "mixed")  # precisions chosen to trade accuracy for speed


def _mismatch(fidelity, config: RunConfig, lossy: bool) -> str | None:
    bound = config.fidelity.min_cos_lossy if lossy else config.fidelity.min_cos
    if fidelity.cos_min < bound:
        return f"cos_min {fidelity.cos_min:.4f} < {bound}"
    if config.fidelity.max_abs_diff is not None and fidelity.max_abs_diff > config.fidelity.max_abs_diff:
        return f"max_abs_diff {fidelity.max_abs_diff:.3g} > {config.fidelity.max_abs_diff}"
    return None


def _estimates(session: Session, workload: Workload, strategy: ShapeStrategy, config: RunConfig,
               first_round: dict | None) -> Estimates:
    if not first_round or not first_round.get("estimates"):
        return warm_up(session, workload, strategy, config)
    for indices in ([0], list(range(workload.batch_limit(config.workload.batch_size)))):  # warm, do not re-time
        session.predict(workload.collate([i % len(workload) for i in indices], strategy))
    return Estimates(**first_round["estimates"])


def warm_up(session: Session, workload: Workload, strategy: ShapeStrategy, config: RunConfig) -> Estimates:
    """Warm the session and time it roughly, so LoadGen can size its query schedule."""
    n = len(workload)
    # Bucketed batches are formed from length-sorted samples: time them the way Offline will serve them.
    order = workload.length_order() if strategy is ShapeStrategy.bucketed else list(range(n))

    def timed(count: int, repeats: int) -> float:
        times = []
        for r in range(repeats):
            indices = [order[(r * max(count, n // repeats) + i) % n] for i in range(count)]
            batch = workload.collate(indices, strategy)
            start = time.perf_counter()
            session.predict(batch)
            times.append(time.perf_counter() - start)
        return float(np.median(times[1:] if len(times) > 1 else times))

    single = timed(1, 6)
    per_query = config.loadgen.multi_stream_samples_per_query
    chunk = workload.batch_limit(per_query)
    multi = timed(chunk, 3) * -(-per_query // chunk)
    batch = workload.batch_limit(config.workload.batch_size)
    return Estimates(latency_s_single=single, latency_s_multi=multi, throughput_sps=batch / timed(batch, 2))
