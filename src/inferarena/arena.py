"""Where the axes meet: model -> variants -> runtimes -> LoadGen scenarios -> store.

    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload)
    for variant in plan(config, artifact, workload):
        result = worker(measure, variant)      # own process, timeout; failure is a result
        store.save_variant(run_id, variant, result)
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from inferarena import environment, jobs, models, registry, runtimes, workloads
from inferarena.config import RunConfig
from inferarena.errors import InferarenaError, RuntimeUnavailable
from inferarena.hardware import host
from inferarena.passes.base import PassContext
from inferarena.plan import pipeline_steps, plan
from inferarena.rounds import merge as rounds_merge, noisiest
from inferarena.store import Store
from inferarena.trackers import cost
from inferarena.worker import run_isolated

# on_event(kind, data) where kind is "plan", "start" or "done" ("done" of a variant has variant=True).
EventSink = Callable[[str, dict], None]


@dataclass
class Paths:
    cache_dir: Path  # pass outputs, shared across runs (content-addressed)
    work_dir: Path  # per-run scratch: reference outputs, worker logs


@dataclass
class RunSummary:
    run_id: int
    resumed: bool
    skipped: list[str] = field(default_factory=list)  # variants already stored by an earlier attempt
    notes: list[str] = field(default_factory=list)


def run(config: RunConfig, store: Store, paths: Paths, resume: bool = False, on_event: EventSink | None = None) -> RunSummary:
    emit = on_event or (lambda kind, data: None)
    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload)
    specs, notes = plan(config, artifact, workload, host())
    notes = [*workload.notes, *notes]
    evaluators = _evaluators(config, artifact, notes)
    price = cost.price(host(), config.cost.instance, config.cost.usd_per_hour)
    peaks = _peaks(paths.cache_dir, _threads(config), notes, emit)
    env = {**environment.capture(), "gemm_peak_gflops": peaks, "price": price.label}

    run_id = store.resumable_run(config.config_hash()) if resume else None
    summary = RunSummary(run_id=run_id or 0, resumed=run_id is not None, notes=notes)
    if run_id is None:
        summary.run_id = store.create_run(
            config.model_dump(mode="json"), config.config_hash(), artifact.meta.get("name", config.model),
            config.quick, env, workload.describe(), notes,
        )
    done = store.finished_variants(summary.run_id)
    summary.skipped = [s.name for s in specs if s.name in done]
    todo = [s for s in specs if s.name not in done]
    emit("plan", {"run_id": summary.run_id, "total": len(specs), "todo": len(todo), "notes": notes})

    work = paths.work_dir / f"run-{summary.run_id}"
    (work / "logs").mkdir(parents=True, exist_ok=True)
    timeout = config.timeout_s()

    def log(name: str) -> Path:  # one log per worker, so a crash report shows only its own output
        return work / "logs" / (re.sub(r"[^A-Za-z0-9_.+=-]+", "_", name) + ".log")

    if todo:
        reference, context = _reference_and_context(config, artifact, workload, work, log("reference"), emit, evaluators)
        if reference.ok:
            store.update_environment(summary.run_id, {"task_reference": _reference_task(reference.value)})
        built = {}
        for steps in dict.fromkeys(s.steps for s in todo if s.steps):  # each distinct build once, in plan order
            label = next((s.pipeline for s in todo if s.steps == steps and s.pipeline), None) or steps[-1][0]
            emit("start", {"name": f"build: {label}"})
            if reference.ok:
                built[steps] = run_isolated(jobs.build, (steps, artifact, paths.cache_dir, context), timeout, log(label))
            else:
                built[steps] = reference
            outcome = built[steps]
            cached = outcome.ok and all(step["cached"] for step in outcome.value[1])
            emit("done", {"name": f"build: {label}" + (" (cached)" if cached else ""), "ok": outcome.ok,
                          "error": outcome.error})
        for spec in todo:
            emit("start", {"name": spec.name})
            job = jobs.MeasureJob(spec, artifact, workload, reference.value, context.eval_indices, config, price, peaks,
                                  evaluators)
            result = _measure(job, reference, built, log(spec.name))
            store.save_variant(summary.run_id, spec, result)
            emit("done", {"name": spec.name, "ok": result["status"] == "ok", "error": result.get("error"), "variant": True})
    store.finish_run(summary.run_id)
    return summary


def optimize(config: RunConfig, pipeline, paths: Paths, on_event: EventSink | None = None) -> dict:
    """Build one pipeline's artifact without measuring it: what `inferarena optimize` runs."""
    emit = on_event or (lambda kind, data: None)
    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload)
    steps, _fmt, _precision = pipeline_steps(pipeline, artifact)
    work = paths.work_dir / "optimize"
    work.mkdir(parents=True, exist_ok=True)
    reference, context = _reference_and_context(config, artifact, workload, work, work / "reference.log", emit)
    if not reference.ok:
        raise InferarenaError(f"the FP32 reference failed: {reference.error}", "check the model with `inferarena run`")
    emit("start", {"name": f"build: {pipeline.name}"})
    outcome = run_isolated(jobs.build, (steps, artifact, paths.cache_dir, context), config.timeout_s(),
                           work / f"{pipeline.name}.log")
    emit("done", {"name": f"build: {pipeline.name}", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        raise InferarenaError(f"pipeline {pipeline.name} failed: {outcome.error}", "see the pass's parameters")
    built, applied = outcome.value
    return {"artifact": built, "passes": applied}


def _threads(config: RunConfig) -> int:
    return config.threads or host().logical_cores


def _reference_and_context(config: RunConfig, artifact, workload, work: Path, log: Path, emit: EventSink,
                           evaluators: tuple[str, ...] = ()):
    """The FP32 reference on the evaluation samples, and the context data-driven passes see."""
    eval_indices = list(range(min(config.workload.eval_samples, len(workload))))
    emit("start", {"name": "reference (FP32)"})
    reference = _reference(artifact, workload, eval_indices, _threads(config), work, config.timeout_s(), log, evaluators)
    emit("done", {"name": "reference (FP32)", "ok": reference.ok, "error": reference.error})
    context = PassContext(workload, reference.value, eval_indices, _threads(config),
                          fingerprint=f"{config.workload.model_dump_json()}|{len(eval_indices)}")
    return reference, context


def _reference(artifact, workload, eval_indices, threads, work: Path, timeout: float, log: Path, evaluators=()):
    """FP32 outputs from the first installed runtime that loads the source format as is."""
    for name in registry.RUNTIMES:
        runtime = runtimes.get(name)
        if artifact.format in runtime.formats and "fp32" in runtime.precisions and runtime.available():
            out = work / "reference.npy"
            args = (name, artifact, workload, eval_indices, threads, out, evaluators)
            return run_isolated(jobs.reference, args, timeout, log)
    raise RuntimeUnavailable(
        f"no installed runtime loads a {artifact.format} model to compute the FP32 reference",
        "pip install 'inferarena[all]'",
    )


def _evaluators(config: RunConfig, artifact, notes: list[str]) -> tuple[str, ...]:
    """The configured task metrics that fit this model, with their data fetched here, once."""
    chosen = []
    for name in config.evaluators:
        cls = registry.load(registry.EVALUATORS, name)
        if cls.task != artifact.meta.get("task"):
            notes.append(f"task metric {name} skipped: it scores {cls.task} models, and this model's task is "
                         f"{artifact.meta.get('task') or 'not declared'}")
            continue
        try:
            cls().texts()  # downloads and verifies the data on first use
        except InferarenaError as exc:
            notes.append(f"task metric {name} skipped: {exc.problem} ({exc.fix})")
            continue
        chosen.append(name)
    return tuple(chosen)


def _reference_task(reference_path: str) -> list[dict]:
    path = jobs.reference_task_path(Path(reference_path))
    return json.loads(path.read_text()) if path.is_file() else []


def _peaks(cache_dir: Path, threads: int, notes: list[str], emit: EventSink) -> dict[str, float]:
    emit("start", {"name": "GEMM peaks (cached per machine)"})
    outcome = run_isolated(jobs.peaks, (cache_dir, threads), 300)
    emit("done", {"name": "GEMM peaks (cached per machine)", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        notes.append(f"no GEMM peak, so no % of peak: {outcome.error}")
        return {}
    return outcome.value["gflops"]


def _measure(job: jobs.MeasureJob, reference, built, log: Path) -> dict:
    if not reference.ok:
        return {"status": "failed", "error": f"reference failed: {reference.error}", "error_detail": reference.detail}
    build: dict = {"artifact": str(job.artifact.path)}  # what to deploy: the source, or what the passes made
    if job.spec.steps:
        outcome = built[job.spec.steps]
        if not outcome.ok:
            what = job.spec.pipeline or job.spec.steps[-1][0]
            return {"status": "failed", "error": f"build {what} failed: {outcome.error}", "error_detail": outcome.detail}
        artifact, applied = outcome.value
        job = dataclasses.replace(job, artifact=artifact)
        kept = artifact.meta.get("kept_layers")
        build = {"artifact": str(artifact.path), "passes": applied, "kept_layers": kept,
                 "pass_report": artifact.meta.get("pass_report")}
        if kept:
            build["precision"] = "mixed"
    results = []
    planned = job.config.rounds.planned(job.config.quick)
    while len(results) < planned:
        outcome = run_isolated(jobs.measure, (job,), job.config.timeout_s(), log)
        if not outcome.ok or outcome.value["status"] != "ok":
            failed = outcome.value if outcome.ok else {"status": "failed", "error": outcome.error,
                                                        "error_detail": outcome.detail}
            if results:
                failed["error"] = f"round {len(results) + 1}: {failed['error']}"
            return {**failed, **build}
        results.append(outcome.value)
        if len(results) == 1:  # task metrics do not change between rounds: scored once
            job = dataclasses.replace(_same_offered_load(job, outcome.value), evaluators=())
        if len(results) == planned == job.config.rounds.planned(job.config.quick):
            worst = noisiest(rounds_merge(results))
            if worst and worst[1] > job.config.rounds.noisy_spread_pct:  # noisy: measure it again
                planned += job.config.rounds.extra_when_noisy
    return {**rounds_merge(results), **build}


def _same_offered_load(job: jobs.MeasureJob, first: dict) -> jobs.MeasureJob:
    """Later rounds offer the Server scenario the rate the first round chose, so the rounds compare."""
    server = next((s for s in first["scenarios"] if s["metrics"].get("target_qps")), None)
    if server is None or job.config.loadgen.server_target_qps:
        return job
    loadgen = job.config.loadgen.model_copy(update={"server_target_qps": server["metrics"]["target_qps"]})
    return dataclasses.replace(job, config=job.config.model_copy(update={"loadgen": loadgen}))
