"""Where the axes meet: model -> variants -> runtimes -> LoadGen scenarios -> store.

    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload, config.generation)
    for variant in plan(config, artifact, workload):
        result = launcher.run(measure, variant)   # own process, timeout; failure is a result
        store.save_variant(run_id, result)
"""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from inferarena import environment, jobs, kinds, launchers, models, registry, workloads
from inferarena.config import RoundsConfig, RunConfig
from inferarena.errors import InferarenaError
from inferarena.events import EventSink, ignore
from inferarena.fsutil import private_dir
from inferarena.hardware import MemoryBandwidth, gpus, host, resolve_device
from inferarena.launchers import Launcher
from inferarena.passes.base import PassContext
from inferarena.plan import pipeline_steps, plan
from inferarena.results import RunSummary, VariantResult, VariantSpec
from inferarena.rounds import measure_rounds
from inferarena.store import Store
from inferarena.trackers import cost

# on_event(event, data) where event is "plan", "start" or "done" ("done" of a variant has variant=True).


@dataclass
class Paths:
    cache_dir: Path  # pass outputs, shared across runs (content-addressed)
    work_dir: Path  # per-run scratch: reference outputs, worker logs


@dataclass
class Preview:
    """What a sweep would measure, worked out without measuring: the model read, the inputs built and
    checked, the variants planned. `run --dry-run` prints it; every sweep starts from it."""

    artifact: object
    kind: object
    config: RunConfig  # with the scenarios the sweep measures
    workload: object
    specs: list[VariantSpec]
    notes: list[str]
    device: str = "cpu"  # the run's device, `auto` resolved


def preview(config: RunConfig, judged_by: str | None = None) -> Preview:
    """Read the model, build its workload and plan the variants: every user error shows here, before
    any worker starts. `judged_by`: a search's profile, whose scenarios are the only ones measured."""
    artifact = models.resolve(config.model)
    kind = kinds.of_artifact(artifact)
    # A search measures only the scenarios its profile is judged on; a run, those its config asks for.
    scenarios = kind.judged_by[judged_by] if judged_by else kind.scenarios(config.scenarios)
    device = resolve_device(config.device)  # a cuda run without a GPU stops here, in one line
    workload = workloads.build(artifact, config.workload, config.generation)
    specs, notes = plan(config, artifact, workload, host(), device)
    return Preview(artifact, kind, config.model_copy(update={"scenarios": list(scenarios)}), workload, specs,
                   [*workload.notes, *notes], device)


class _Sweep:
    """One run's shared state: the model, workload, reference, builds and store, for `run` and `search`."""

    def __init__(self, config: RunConfig, store: Store, paths: Paths, emit: EventSink, launcher: Launcher,
                 judged_by: str | None = None):
        self.store, self.paths, self.emit, self.launcher = store, paths, emit, launcher
        planned = preview(config, judged_by)
        self.artifact, self.kind, self.config, self.workload = planned.artifact, planned.kind, planned.config, planned.workload
        self.specs, self.notes, self.device = planned.specs, planned.notes, planned.device
        self.evaluators = _evaluators(config, self.artifact, self.notes)
        self.price = cost.price(host(), config.cost.instance, config.cost.usd_per_hour, self.device,
                                gpus() if self.device == "cuda" else ())
        self.peaks = _peaks(launcher, paths.cache_dir, _threads(config), self.notes, emit, self.device)
        self.bandwidth = (_bandwidth(launcher, paths.cache_dir, _threads(config), self.notes, emit, self.device)
                          if self.kind.needs_bandwidth else None)
        self.built: dict = {}
        self.reference = self.context = None

    def open(self, resume: bool, config: RunConfig) -> RunSummary:
        """Create the run, or find the unfinished one with this config (as the user gave it)."""
        run_id = self.store.resumable_run(config.config_hash()) if resume else None
        summary = RunSummary(run_id=run_id or 0, resumed=run_id is not None, notes=self.notes)
        if run_id is None:
            env = {**environment.capture(), **self.launcher.describe(), "device": self.device,
                   "gemm_peak_gflops": self.peaks,
                   "price": self.price.label,
                   **({"memory_bandwidth_gb_per_s": self.bandwidth.as_dict()} if self.bandwidth else {})}
            summary.run_id = self.store.create_run(
                config.model_dump(mode="json"), config.config_hash(), self.artifact.meta.get("name", config.model),
                config.quick, env, self.workload.describe(), self.notes,
            )
        self.run_id = summary.run_id
        self.work = self.paths.work_dir / f"run-{summary.run_id}"
        private_dir(self.work / "logs")
        return summary

    def log(self, name: str) -> Path:  # one log per worker, so a crash report shows only its own output
        return self.work / "logs" / (re.sub(r"[^A-Za-z0-9_.+=-]+", "_", name) + ".log")

    def prepare(self) -> None:
        """The FP32 reference (outputs and task scores) that every variant is checked against."""
        if self.reference is not None:
            return
        self.reference, self.context = _reference_and_context(self.config, self.kind, self.launcher, self.artifact,
                                                              self.workload, self.work, self.log("reference"), self.emit,
                                                              self.evaluators, self.paths.cache_dir)
        if self.reference.ok:
            self.store.update_environment(self.run_id, self.kind.reference_environment(self.reference.value))

    def build(self, steps: tuple, label: str) -> None:
        """Run a variant's passes once (each cached by content hash across runs)."""
        if steps in self.built:
            return
        self.emit("start", {"name": f"build: {label}"})
        if self.reference.ok:
            self.built[steps] = self.launcher.run(jobs.build, (steps, self.artifact, self.paths.cache_dir, self.context),
                                                  self.config.timeout_s(), self.log(label))
        else:
            self.built[steps] = self.reference
        outcome = self.built[steps]
        cached = outcome.ok and all(step.cached for step in outcome.value.passes)
        self.emit("done", {"name": f"build: {label}" + (" (cached)" if cached else ""), "ok": outcome.ok,
                           "error": outcome.error})

    def measure(self, spec: VariantSpec, keep_going=None, previous: tuple[VariantResult, ...] = (),
                **options) -> tuple[VariantResult, list[VariantResult]]:
        result, rounds = self.evaluate(spec, keep_going, previous, **options)
        self.record(result)
        return result, rounds

    def evaluate(self, spec: VariantSpec, keep_going=None, previous: tuple[VariantResult, ...] = (),
                 context: VariantResult | None = None,
                 rounds: RoundsConfig | None = None) -> tuple[VariantResult, list[VariantResult]]:
        """A variant's rounds, on one machine (the launcher's lane); stored by `record`. A lane whose
        machine is lost after its first round starts the variant again on another, up to `retries` times.

        `previous` rounds are merged with the new ones; `context`, a first round measured before (a search
        trial), lends its fidelity, estimates and offered load without being merged; `rounds` overrides
        the run's rounds policy."""
        self.prepare()
        if spec.steps:
            self.build(spec.steps, _label(spec))
        self.emit("start", {"name": spec.name})
        job = jobs.MeasureJob(spec, self.artifact, self.workload, self.reference.value, self.context.eval_indices,
                              jobs.MeasureSettings.of(self.config), self.price, self.peaks, self.evaluators,
                              bandwidth_gb_per_s=self.bandwidth.read_gb_per_s if self.bandwidth else None)
        context = context or (previous[0] if previous else None)
        lost = None
        for _ in range(self.launcher.retries + 1):
            lane = self.launcher.lane(context.node if context else None)
            try:
                return _measure(job, lane, self.config, self.reference, self.built, self.log(spec.name), keep_going,
                                previous, context, rounds)
            except launchers.PlaceLost as exc:
                lost = exc
                if context:  # a confirmation's earlier rounds ran there: nowhere else compares
                    break
        return VariantResult.of(spec, status="failed", error=f"{lost}: its machine was lost "
                                f"{self.launcher.retries + 1 if not context else 1} time(s)"), []

    def record(self, result: VariantResult) -> None:
        self.store.save_variant(self.run_id, result)
        self.emit("done", {"name": result.name, "ok": result.ok, "error": result.error, "variant": True})

    def measure_all(self, specs: list[VariantSpec]) -> None:
        """Measure variants, as many at once as the launcher has slots (a cluster: one per node), storing
        each as it finishes, in the order they finish."""
        if self.launcher.slots <= 1 or len(specs) <= 1:
            for spec in specs:
                self.measure(spec)
            return
        pool = ThreadPoolExecutor(min(self.launcher.slots, len(specs)), thread_name_prefix="variant")
        try:
            for future in as_completed([pool.submit(self.evaluate, spec) for spec in specs]):
                self.record(future.result()[0])
        finally:  # an interrupt leaves the rest unmeasured (`--resume` measures them), without waiting
            pool.shutdown(wait=False, cancel_futures=True)


def run(config: RunConfig, store: Store, paths: Paths, resume: bool = False, on_event: EventSink | None = None,
        launcher: Launcher | None = None) -> RunSummary:
    """Measure every planned variant; `launcher` decides where each job runs (default: a fresh process)."""
    sweep = _Sweep(config, store, paths, on_event or ignore, launcher or launchers.Spawn())
    summary = sweep.open(resume, config)
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
        sweep.measure_all(todo)
    store.finish_run(summary.run_id)
    return summary


def search(config: RunConfig, store: Store, paths: Paths, resume: bool = False,
           on_event: EventSink | None = None, launcher: Launcher | None = None) -> RunSummary:
    """Search the joint space for the profile's best variant (see `inferarena.search`), then confirm the finalists.

    Only the scenarios the profile is judged on are measured, as the model's kind names them."""
    from inferarena.search import Search, SearchSettings, build_space

    sweep = _Sweep(config, store, paths, on_event or ignore, launcher or launchers.Spawn(),
                   judged_by=config.profile)
    config = sweep.config
    shapes = [s.value for s in config.workload.shapes if s in sweep.workload.strategies]
    if not sweep.workload.shape_in_name:  # the workload shapes its inputs one way only (generation prompts)
        shapes = [s.value for s in sweep.workload.strategies]
    space = build_space(sweep.specs, shapes, config.profile, sweep.kind, sweep.workload.shape_in_name)
    summary = sweep.open(resume, config)
    done = {v.name: v for v in store.load_run(summary.run_id).variants}
    summary.skipped = list(done)
    # The reference and every base's build come first, so the time budget (and the confirmation reserve,
    # estimated from the mean round) counts measurements only.
    sweep.prepare()
    for base in space.bases:
        if base.steps:
            sweep.build(base.steps, _label(base))
    driver = Search(space, SearchSettings.of(config), sweep.kind,
                    lambda spec, keep_going: sweep.measure(spec, keep_going=keep_going), done, peaks=sweep.peaks)
    total = min(driver.max_trials, space.size()) + config.search.finalists
    sweep.emit("plan", {"run_id": summary.run_id, "total": total, "todo": total,
                        "notes": [*sweep.notes, f"search space: {space.size()} points ({', '.join(d.name for d in space.dimensions)}"
                                  f" over {len(space.bases)} runtime/precision/pipeline bases); strategy "
                                  f"{config.search.strategy}"]})

    driver.optuna() if config.search.strategy == "optuna" else driver.grid()
    finalists = driver.finalists(config.search.finalists)
    if finalists:
        sweep.notes.append(f"finalists, confirmed interleaved: {', '.join(t.spec.name for t in finalists)}")
    _confirm(sweep, finalists, driver.done, config.rounds.planned(config.quick))
    if driver.cut:
        sweep.notes.append(f"roofline: {len(driver.cut)} candidates not measured, since they could not win "
                           f"(e.g. {driver.cut[0][0].name}: {driver.cut[0][1]})")
    store.finish_run(summary.run_id)
    summary.notes = sweep.notes
    return summary


def _confirm(sweep: _Sweep, finalists, done: dict[str, VariantResult], planned: int) -> None:
    """Measure the search's finalists again, interleaved: round r of every finalist before round r + 1 of
    any, each round in a fresh process, so that all of them see the same states of a machine whose speed
    drifts. A finalist's stored figures are then these rounds alone: the trial's reading chose it, the
    confirmation judges it; it keeps the trial's fidelity and offered load. A finalist stored as confirmed
    before an interruption is kept as it is."""
    single = sweep.config.rounds.model_copy(update={"count": 1, "extra_when_noisy": 0, "ci_target_pct": None})
    todo = [t for t in finalists if not (t.spec.name in done and done[t.spec.name].confirmed)]
    context = {t.spec.name: t.rounds[0] if t.rounds else done[t.spec.name] for t in todo}
    rounds: dict[str, list[VariantResult]] = {t.spec.name: [] for t in todo}
    for _ in range(planned):
        for trial in todo:
            name = trial.spec.name
            if rounds[name] and not rounds[name][-1].ok:
                continue
            result, kept = sweep.evaluate(trial.spec, previous=tuple(rounds[name]), context=context[name], rounds=single)
            rounds[name] = kept or [result]
            result.confirmed = result.ok
            sweep.record(result)


def _label(spec) -> str:
    """A build's name: its pipeline, plus the conversion that follows it for this runtime (if any)."""
    name, config = spec.steps[-1]
    if not spec.pipeline:
        return name
    converted = config == "{}" and len(spec.steps) > 1  # conversions are the only steps with an empty config
    return spec.pipeline + (f" → {name}" if converted else "")


def optimize(config: RunConfig, pipeline, paths: Paths, on_event: EventSink | None = None) -> jobs.Built:
    """Build one pipeline's artifact without measuring it: what `inferarena optimize` runs."""
    emit = on_event or ignore
    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload, config.generation)
    steps, _fmt, _precision = pipeline_steps(pipeline, artifact)
    work = paths.work_dir / "optimize"
    private_dir(work)
    launcher = launchers.Spawn()
    reference, context = _reference_and_context(config, kinds.of_artifact(artifact), launcher, artifact, workload,
                                                work, work / "reference.log", emit, cache_dir=paths.cache_dir)
    if not reference.ok:
        raise InferarenaError(f"the FP32 reference failed: {reference.error}", "check the model with `inferarena run`")
    emit("start", {"name": f"build: {pipeline.name}"})
    outcome = launcher.run(jobs.build, (steps, artifact, paths.cache_dir, context), config.timeout_s(),
                           work / f"{pipeline.name}.log")
    emit("done", {"name": f"build: {pipeline.name}", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        raise InferarenaError(f"pipeline {pipeline.name} failed: {outcome.error}", "see the pass's parameters")
    return outcome.value


def _threads(config: RunConfig) -> int:
    return config.threads or host().logical_cores


def _reference_and_context(config: RunConfig, kind, launcher: Launcher, artifact, workload, work: Path, log: Path,
                           emit: EventSink, evaluators: tuple[str, ...] = (), cache_dir: Path | None = None):
    """The FP32 reference on the evaluation samples (as the model's kind computes it), and the context
    data-driven passes see."""
    eval_indices = list(range(min(config.workload.eval_samples, len(workload))))
    fn, args = kind.reference_job(artifact, workload, eval_indices, _threads(config), work, cache_dir, evaluators,
                                  config.generation)  # a missing runtime is the user's error, before any worker
    emit("start", {"name": "reference (FP32)"})
    reference = launcher.run(fn, args, config.timeout_s(), log)
    emit("done", {"name": "reference (FP32)", "ok": reference.ok, "error": reference.error})
    context = PassContext(workload, reference.value, eval_indices, _threads(config), batch_size=config.workload.batch_size,
                          fingerprint=_fingerprint(config, len(eval_indices)))
    return reference, context


def _fingerprint(config, eval_count: int) -> str:
    """What the calibration data depends on: part of every data-driven pass's cache key. Generation
    settings shape the prompts (lengths, what they ask), so they count only where they do: a default
    generation block leaves the key as it was, and encoder caches stay valid."""
    from inferarena.config import GenerationConfig

    key = f"{config.workload.model_dump_json()}|{eval_count}"
    if config.generation != GenerationConfig():
        key += f"|{config.generation.model_dump_json()}"
    return key


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


def _bandwidth(launcher: Launcher, cache_dir: Path, threads: int, notes: list[str], emit: EventSink,
               device: str = "cpu") -> MemoryBandwidth | None:
    emit("start", {"name": "memory bandwidth (cached per machine)"})
    outcome = launcher.run(jobs.bandwidth, (cache_dir, threads, False, device), 300)
    emit("done", {"name": "memory bandwidth (cached per machine)", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        notes.append(f"no memory bandwidth, so no % of the decode roofline: {outcome.error}")
        return None
    return outcome.value


def _peaks(launcher: Launcher, cache_dir: Path, threads: int, notes: list[str], emit: EventSink,
           device: str = "cpu") -> dict[str, float]:
    emit("start", {"name": "GEMM peaks (cached per machine)"})
    outcome = launcher.run(jobs.peaks, (cache_dir, threads, False, device), 300)
    emit("done", {"name": "GEMM peaks (cached per machine)", "ok": outcome.ok, "error": outcome.error})
    if not outcome.ok:
        notes.append(f"no GEMM peak, so no % of peak: {outcome.error}")
        return {}
    return outcome.value.gflops


def _measure(job: jobs.MeasureJob, launcher: Launcher, config: RunConfig, reference, built, log: Path,
             keep_going: Callable[[VariantResult], bool] | None = None,
             previous: tuple[VariantResult, ...] = (), context: VariantResult | None = None,
             rounds: RoundsConfig | None = None) -> tuple[VariantResult, list[VariantResult]]:
    """Measure a variant in rounds, each a job of its own; returns the merged result and the rounds.

    `keep_going(first round)` may stop a variant after one round (search pruning); `previous`
    rounds are merged with the new ones; `context` (default: the first of them) lends its first-round
    figures; `rounds` overrides the run's policy.
    """
    spec = job.spec
    if not reference.ok:
        return VariantResult.of(spec, status="failed", error=f"reference failed: {reference.error}",
                                error_detail=reference.detail), []
    build = jobs.Built(job.artifact)  # what to deploy
    if spec.steps:
        outcome = built[spec.steps]
        if not outcome.ok:
            return VariantResult.of(spec, status="failed", error=f"build {spec.pipeline or spec.steps[-1][0]} failed: "
                                    f"{outcome.error}", error_detail=outcome.detail), []
        build = outcome.value
        job = dataclasses.replace(job, artifact=build.artifact)
    if context is not None:
        job = dataclasses.replace(_same_offered_load(job, context), evaluators=(), first_round=jobs.FirstRound.of(context))

    def run_round(index: int, first: VariantResult | None) -> VariantResult:
        nonlocal job
        if first is not None and job.first_round is None:  # later rounds reuse what does not change
            job = dataclasses.replace(_same_offered_load(job, first), evaluators=(), first_round=jobs.FirstRound.of(first))
        outcome = launcher.run(jobs.measure, (job,), config.timeout_s(), log)
        result = outcome.value if outcome.ok else VariantResult.of(spec, status="failed", error=outcome.error,
                                                                   error_detail=outcome.detail)
        return dataclasses.replace(build.stamp(result), node=outcome.node)

    rounds = rounds or config.rounds
    return measure_rounds(run_round, rounds, rounds.planned(config.quick), previous, keep_going)


def _same_offered_load(job: jobs.MeasureJob, first: VariantResult) -> jobs.MeasureJob:
    """Later rounds offer the Server scenario the rate the first round chose, so the rounds compare."""
    server = next((s for s in first.scenarios.values() if s.metrics.get("target_qps")), None)
    settings = job.settings
    if server is None or settings.loadgen.server_target_qps:
        return job
    loadgen = settings.loadgen.model_copy(update={"server_target_qps": server.metrics["target_qps"]})
    return dataclasses.replace(job, settings=dataclasses.replace(settings, loadgen=loadgen))
