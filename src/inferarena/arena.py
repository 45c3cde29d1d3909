"""Where the axes meet: model -> variants -> runtimes -> LoadGen scenarios -> store.

    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload, config.generation)
    for variant in plan(config, artifact, workload):
        result = worker(measure, variant)      # own process, timeout; failure is a result
        store.save_variant(run_id, variant, result)
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from inferarena import environment, jobs, models, registry, runtimes, workloads
from inferarena.config import RunConfig
from inferarena.errors import InferarenaError, RuntimeUnavailable
from inferarena.hardware import host
from inferarena.passes.base import PassContext
from inferarena.plan import pipeline_steps, plan
from inferarena.rounds import drifting, merge as rounds_merge, noisiest, widest_ci
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


class _Sweep:
    """One run's shared state: the model, workload, reference, builds and store, for `run` and `search`."""

    def __init__(self, config: RunConfig, store: Store, paths: Paths, emit: EventSink):
        self.config, self.store, self.paths, self.emit = config, store, paths, emit
        self.artifact = models.resolve(config.model)
        self.workload = workloads.build(self.artifact, config.workload, config.generation)
        self.specs, notes = plan(config, self.artifact, self.workload, host())
        self.notes = [*self.workload.notes, *notes]
        self.evaluators = _evaluators(config, self.artifact, self.notes)
        self.price = cost.price(host(), config.cost.instance, config.cost.usd_per_hour)
        self.peaks = _peaks(paths.cache_dir, _threads(config), self.notes, emit)
        self.generative = self.artifact.meta.get("kind") == "generate"
        self.bandwidth = _bandwidth(paths.cache_dir, _threads(config), self.notes, emit) if self.generative else None
        self.built: dict = {}
        self.reference = self.context = None

    def open(self, resume: bool) -> RunSummary:
        """Create the run, or find the unfinished one with this config."""
        config = self.config
        run_id = self.store.resumable_run(config.config_hash()) if resume else None
        summary = RunSummary(run_id=run_id or 0, resumed=run_id is not None, notes=self.notes)
        if run_id is None:
            env = {**environment.capture(), "gemm_peak_gflops": self.peaks, "price": self.price.label,
                   **({"memory_bandwidth_gb_per_s": self.bandwidth} if self.bandwidth else {})}
            summary.run_id = self.store.create_run(
                config.model_dump(mode="json"), config.config_hash(), self.artifact.meta.get("name", config.model),
                config.quick, env, self.workload.describe(), self.notes,
            )
        self.run_id = summary.run_id
        self.work = self.paths.work_dir / f"run-{summary.run_id}"
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        return summary

    def log(self, name: str) -> Path:  # one log per worker, so a crash report shows only its own output
        return self.work / "logs" / (re.sub(r"[^A-Za-z0-9_.+=-]+", "_", name) + ".log")

    def prepare(self) -> None:
        """The FP32 reference (outputs and task scores) that every variant is checked against."""
        if self.reference is not None:
            return
        self.reference, self.context = _reference_and_context(self.config, self.artifact, self.workload, self.work,
                                                              self.log("reference"), self.emit, self.evaluators,
                                                              self.paths.cache_dir)
        if self.reference.ok and self.generative:
            ref = json.loads(Path(self.reference.value).read_text())
            self.store.update_environment(self.run_id, {"generation_reference": {
                "runtime": ref["runtime"], "precision": "fp32", "perplexity": ref["perplexity"]}})
        elif self.reference.ok:
            self.store.update_environment(self.run_id, {"task_reference": _reference_task(self.reference.value)})

    def build(self, steps: tuple, label: str) -> None:
        """Run a variant's passes once (each cached by content hash across runs)."""
        if steps in self.built:
            return
        self.emit("start", {"name": f"build: {label}"})
        if self.reference.ok:
            self.built[steps] = run_isolated(jobs.build, (steps, self.artifact, self.paths.cache_dir, self.context),
                                             self.config.timeout_s(), self.log(label))
        else:
            self.built[steps] = self.reference
        outcome = self.built[steps]
        cached = outcome.ok and all(step["cached"] for step in outcome.value[1])
        self.emit("done", {"name": f"build: {label}" + (" (cached)" if cached else ""), "ok": outcome.ok,
                           "error": outcome.error})

    def measure(self, spec, config: RunConfig | None = None, keep_going=None, previous: tuple = ()) -> tuple[dict, list]:
        self.prepare()
        if spec.steps:
            self.build(spec.steps, _label(spec))
        self.emit("start", {"name": spec.name})
        job = jobs.MeasureJob(spec, self.artifact, self.workload, self.reference.value, self.context.eval_indices,
                              config or self.config, self.price, self.peaks, self.evaluators,
                              bandwidth_gb_per_s=(self.bandwidth or {}).get("read_gb_per_s"))
        result, rounds = _measure(job, self.reference, self.built, self.log(spec.name), keep_going, previous)
        self.store.save_variant(self.run_id, spec, result)
        self.emit("done", {"name": spec.name, "ok": result["status"] == "ok", "error": result.get("error"),
                           "variant": True})
        return result, rounds


def run(config: RunConfig, store: Store, paths: Paths, resume: bool = False, on_event: EventSink | None = None) -> RunSummary:
    sweep = _Sweep(config, store, paths, on_event or (lambda kind, data: None))
    summary = sweep.open(resume)
    done = store.finished_variants(summary.run_id)
    summary.skipped = [s.name for s in sweep.specs if s.name in done]
    todo = [s for s in sweep.specs if s.name not in done]
    sweep.emit("plan", {"run_id": summary.run_id, "total": len(sweep.specs), "todo": len(todo), "notes": sweep.notes})
    if todo:
        sweep.prepare()
        first: dict = {}
        for spec in todo:
            if spec.steps:
                first.setdefault(spec.steps, spec)
        for spec in first.values():  # each distinct build once, in plan order
            sweep.build(spec.steps, _label(spec))
        for spec in todo:
            sweep.measure(spec)
    store.finish_run(summary.run_id)
    return summary


def search(config: RunConfig, store: Store, paths: Paths, resume: bool = False,
           on_event: EventSink | None = None) -> RunSummary:
    """Search the joint space for the profile's best variant (see `inferarena.search`), then confirm the finalists."""
    from inferarena.search import Search, build_space

    sweep = _Sweep(config, store, paths, on_event or (lambda kind, data: None))
    shapes = [s.value for s in config.workload.shapes if s in sweep.workload.strategies]
    space = build_space(sweep.specs, shapes, config.profile)
    summary = sweep.open(resume)
    stored = store.load_run(summary.run_id)
    done = {v["name"]: _as_result(v) for v in stored["variants"]}
    summary.skipped = list(done)
    # The reference and every base's build come first, so the time budget (and the confirmation reserve,
    # estimated from the mean round) counts measurements only.
    sweep.prepare()
    for base in space.bases:
        if base.steps:
            sweep.build(base.steps, _label(base))
    driver = Search(space, config, lambda spec, keep_going: sweep.measure(spec, keep_going=keep_going), done)
    total = min(driver.max_trials, space.size()) + config.search.finalists
    sweep.emit("plan", {"run_id": summary.run_id, "total": total, "todo": total,
                        "notes": [*sweep.notes, f"search space: {space.size()} points ({', '.join(d.name for d in space.dimensions)}"
                                  f" over {len(space.bases)} runtime/precision/pipeline bases); strategy "
                                  f"{config.search.strategy}"]})

    driver.optuna() if config.search.strategy == "optuna" else driver.grid()
    for trial in driver.finalists(config.search.finalists):  # a confirmation measurement, in fresh processes
        if trial.rounds:
            sweep.measure(trial.spec, previous=tuple(trial.rounds))
    store.finish_run(summary.run_id)
    summary.notes = sweep.notes
    return summary


def _label(spec) -> str:
    """A build's name: its pipeline, plus the conversion that follows it for this runtime (if any)."""
    name, config = spec.steps[-1]
    if not spec.pipeline:
        return name
    converted = config == "{}" and len(spec.steps) > 1  # conversions are the only steps with an empty config
    return spec.pipeline + (f" → {name}" if converted else "")


def _as_result(v: dict) -> dict:
    """A stored variant in the shape `jobs.measure` returns, for a resumed search."""
    return {"status": v["status"], "fidelity": v.get("fidelity"), "pruned": bool(v.get("pruned")),
            "memory": v.get("memory"), "artifact": v.get("artifact"),
            "scenarios": [{"scenario": name, "metrics": m["metrics"]} for name, m in v["scenarios"].items()]}


def optimize(config: RunConfig, pipeline, paths: Paths, on_event: EventSink | None = None) -> dict:
    """Build one pipeline's artifact without measuring it: what `inferarena optimize` runs."""
    emit = on_event or (lambda kind, data: None)
    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload, config.generation)
    steps, _fmt, _precision = pipeline_steps(pipeline, artifact)
    work = paths.work_dir / "optimize"
    work.mkdir(parents=True, exist_ok=True)
    reference, context = _reference_and_context(config, artifact, workload, work, work / "reference.log", emit,
                                                cache_dir=paths.cache_dir)
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
                           evaluators: tuple[str, ...] = (), cache_dir: Path | None = None):
    """The FP32 reference on the evaluation samples, and the context data-driven passes see."""
    eval_indices = list(range(min(config.workload.eval_samples, len(workload))))
    emit("start", {"name": "reference (FP32)"})
    if artifact.meta.get("kind") == "generate":
        from inferarena import jobs_generation

        jobs_generation.reference_runtime(artifact)  # a missing runtime is the user's error, before any worker
        args = (artifact, workload, eval_indices, _threads(config), config.generation, cache_dir, work / "reference.json")
        reference = run_isolated(jobs_generation.reference, args, config.timeout_s(), log)
    else:
        reference = _reference(artifact, workload, eval_indices, _threads(config), work, config.timeout_s(), log,
                               evaluators)
    emit("done", {"name": "reference (FP32)", "ok": reference.ok, "error": reference.error})
    context = PassContext(workload, reference.value, eval_indices, _threads(config), batch_size=config.workload.batch_size,
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
    named = config.evaluators is not None
    for name in config.evaluators if named else registry.EVALUATORS:
        cls = registry.load(registry.EVALUATORS, name)
        if not named and not (cls.default and cls.task == artifact.meta.get("task")):
            continue
        if cls.task != artifact.meta.get("task"):
            notes.append(f"task metric {name} skipped: it scores {cls.task} models, and this model's task is "
                         f"{artifact.meta.get('task') or 'not declared'}")
            continue
        try:
            cls().inputs()  # downloads and verifies the data on first use
        except InferarenaError as exc:
            notes.append(f"task metric {name} skipped: {exc.problem} ({exc.fix})")
            continue
        chosen.append(name)
    return tuple(chosen)


def _reference_task(reference_path: str) -> list[dict]:
    path = jobs.reference_task_path(Path(reference_path))
    return json.loads(path.read_text()) if path.is_file() else []


def _bandwidth(cache_dir: Path, threads: int, notes: list[str], emit: EventSink) -> dict | None:
    emit("start", {"name": "memory bandwidth (cached per machine)"})
    outcome = run_isolated(jobs.bandwidth, (cache_dir, threads), 300)
    emit("done", {"name": "memory bandwidth (cached per machine)", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        notes.append(f"no memory bandwidth, so no % of the decode roofline: {outcome.error}")
        return None
    return outcome.value


def _peaks(cache_dir: Path, threads: int, notes: list[str], emit: EventSink) -> dict[str, float]:
    emit("start", {"name": "GEMM peaks (cached per machine)"})
    outcome = run_isolated(jobs.peaks, (cache_dir, threads), 300)
    emit("done", {"name": "GEMM peaks (cached per machine)", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        notes.append(f"no GEMM peak, so no % of peak: {outcome.error}")
        return {}
    return outcome.value["gflops"]


def _measure(job: jobs.MeasureJob, reference, built, log: Path, keep_going: Callable[[dict], bool] | None = None,
             previous: tuple[dict, ...] = ()) -> tuple[dict, list[dict]]:
    """Measure a variant in rounds, each its own process; returns the merged result and the rounds.

    `keep_going(first round)` may stop a variant after one round (search pruning); `previous`
    rounds (a confirmation measurement) are merged with the new ones.
    """
    if not reference.ok:
        return {"status": "failed", "error": f"reference failed: {reference.error}", "error_detail": reference.detail}, []
    build: dict = {"artifact": str(job.artifact.path), "batch_size": job.spec.batch_size}  # what to deploy
    if job.spec.steps:
        outcome = built[job.spec.steps]
        if not outcome.ok:
            what = job.spec.pipeline or job.spec.steps[-1][0]
            return {"status": "failed", "error": f"build {what} failed: {outcome.error}",
                    "error_detail": outcome.detail}, []
        artifact, applied = outcome.value
        job = dataclasses.replace(job, artifact=artifact)
        kept = artifact.meta.get("kept_layers")
        build = {"artifact": str(artifact.path), "batch_size": job.spec.batch_size, "passes": applied, "kept_layers": kept,
                 "pass_report": artifact.meta.get("pass_report")}
        if kept:
            build["precision"] = "mixed"
    results = list(previous)
    if previous:
        job = dataclasses.replace(_same_offered_load(job, previous[0]), evaluators=(), first_round=_first(previous[0]))
    base = planned = len(previous) + job.config.rounds.planned(job.config.quick)
    started = time.monotonic()
    while len(results) < planned:
        outcome = run_isolated(jobs.measure, (job,), job.config.timeout_s(), log)
        if not outcome.ok or outcome.value["status"] != "ok":
            failed = outcome.value if outcome.ok else {"status": "failed", "error": outcome.error,
                                                        "error_detail": outcome.detail}
            if results:  # the rounds that worked still stand; the failure is kept with them
                merged = rounds_merge(results)
                info = {**(merged.get("session_info") or {}), "failed_round": f"round {len(results) + 1}: {failed['error']}"}
                return {**merged, "session_info": info, **build}, results
            return {**failed, **build}, results
        results.append(outcome.value)
        if len(results) == 1:  # outputs, task metrics and warm-up estimates do not change between rounds
            job = dataclasses.replace(_same_offered_load(job, outcome.value), evaluators=(),
                                      first_round=_first(outcome.value))
            if keep_going is not None and not keep_going({**outcome.value, **build}):
                return {**rounds_merge(results), **build, "pruned": True}, results
        if len(results) == planned == base:
            worst, drift = noisiest(rounds_merge(results)), drifting(results)
            # Noisy (rounds disagree) or drifting (a round's second half moved from its first): measure again.
            limits = job.config.rounds
            if (worst and worst[1] > limits.noisy_spread_pct) or (drift and drift[1] > limits.drift_pct):
                planned += job.config.rounds.extra_when_noisy
        if len(results) == planned and _wants_round(job.config.rounds, results, time.monotonic() - started,
                                                    len(results) - len(previous)):
            planned += 1
    return {**rounds_merge(results), **build}, results


def _wants_round(limits, results: list[dict], elapsed_s: float, new_rounds: int | None = None) -> bool:
    """Measuring to a CI target: one more round while the widest CI is above it and the budget lasts.

    One round never meets a target: its samples cannot show how far the next process would land.
    `new_rounds` are the rounds `elapsed_s` paid for (a confirmation also holds earlier ones).
    """
    if limits.ci_target_pct is None or len(results) >= limits.max_rounds:
        return False
    per_round = elapsed_s / max(1, new_rounds if new_rounds is not None else len(results))
    if elapsed_s + per_round > limits.ci_budget_s:
        return False
    if len(results) < 2:
        return True
    widest = widest_ci(results)
    return widest is not None and widest[1] > limits.ci_target_pct


def _first(result: dict) -> dict:
    return {"fidelity": result["fidelity"], "estimates": result.get("estimates")}


def _same_offered_load(job: jobs.MeasureJob, first: dict) -> jobs.MeasureJob:
    """Later rounds offer the Server scenario the rate the first round chose, so the rounds compare."""
    server = next((s for s in first["scenarios"] if s["metrics"].get("target_qps")), None)
    if server is None or job.config.loadgen.server_target_qps:
        return job
    loadgen = job.config.loadgen.model_copy(update={"server_target_qps": server["metrics"]["target_qps"]})
    return dataclasses.replace(job, config=job.config.model_copy(update={"loadgen": loadgen}))
