"""Models that answer a batch at a time (encoders, classifiers, any ONNX graph): the `predict` kind.

Its reference is the source model in FP32 on the first installed runtime that loads it, one sample
at a time with the least padding; a variant is failed when its outputs drift past the fidelity
bound, and measured under the four MLPerf scenarios otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from inferarena import registry, runtimes
from inferarena.config import ShapeStrategy
from inferarena.errors import RuntimeUnavailable
from inferarena.kinds.base import Column, Constraint, Figure, Kind, Measures, Plot, Profile
from inferarena.outputs import outputs
from inferarena.results import TaskScore
from inferarena.runtimes.base import Session, submit_all
from inferarena.scenarios.base import Estimates
from inferarena.workloads.base import Workload

LOSSY = ("int8", "int4", "fp8", "mixed")  # precisions chosen to trade accuracy for speed


class Predict(Kind, Measures):
    name = "predict"
    profiles = {
        "latency": Profile("latency", "single_stream.latency_ms_p90", "p90 latency at batch 1", "single_stream", 90.0,
                           "lowest SingleStream p90 latency"),
        "throughput": Profile("throughput", "offline.throughput_sps", "Offline throughput", "offline", None,
                              "highest Offline samples/s"),
        "balanced": Profile("balanced", "balanced_score", "balanced score", None, None,
                            "best geometric mean of p90 latency and throughput, each relative to the best"),
        "small": Profile("small", "model_mb", "model size on disk", None, None,
                         "smallest model on disk; ties broken by p90 latency"),
        "energy": Profile("energy", "offline.energy_j_per_query", "Offline energy per query", "offline", None,
                          "least energy per query at Offline throughput", per_query=True),
        "cost": Profile("cost", "offline.cost_usd_per_1m", "Offline cost per 1M queries", "offline", None,
                        "lowest cost per million queries at Offline throughput", per_query=True),
    }
    trade_offs = (Figure("single_stream.latency_ms_p90", "p90 latency"), Figure("offline.throughput_sps", "throughput"),
                  Figure("fidelity.cos_min", "cos_min"), Figure("memory.peak_rss_mb", "peak RSS"))
    constraints = {
        "max_p99_ms": Constraint("single_stream.latency_ms_p99", "max", "SingleStream p99"),
        "max_p90_ms": Constraint("single_stream.latency_ms_p90", "max", "SingleStream p90"),
        "min_cos": Constraint("fidelity.cos_min", "min", "cos_min"),
        "min_throughput": Constraint("offline.throughput_sps", "min", "Offline throughput"),
        "max_memory_mb": Constraint("memory.peak_rss_mb", "max", "peak RSS"),
    }
    judged_by = {"latency": ("single_stream",), "throughput": ("offline",), "balanced": ("single_stream", "offline"),
                 "small": ("single_stream",), "energy": ("offline",), "cost": ("offline",)}
    # Below 16 a 2-core CPU idles between batches; above 64 memory grows for nothing.
    search_batch_sizes = (16, 32, 64)
    fidelity_title = "Variants — fidelity against the FP32 reference"
    fidelity_columns = (Column("cos_mean", "cos mean", ".5f"), Column("cos_min", "cos min", ".5f"),
                        Column("max_abs_diff", "max diff", ".2g"),
                        Column("top1_agreement", "top1\nagree", ".3f", optional=True),
                        Column("top5_agreement", "top5\nagree", ".3f", optional=True))
    pareto_title = "Pareto front — no other variant is better on p90 latency, throughput and cos_min at once"
    pareto_columns = (Figure("single_stream.latency_ms_p90", "SS p90 ms"), Figure("offline.throughput_sps", "samples/s"),
                      Figure("fidelity.cos_min", "cos min", ".5f"))
    plots = (Plot("single_stream.latency_ms_p90", "fidelity.cos_min", "SingleStream p90 latency (ms)",
                  "fidelity: cos min vs FP32", "Latency vs fidelity"),
             Plot("offline.throughput_sps", "memory.peak_rss_mb", "Offline throughput (samples/s)", "peak RSS (MB)",
                  "Throughput vs memory"),
             Plot("offline.pct_of_peak", "offline.useful_pct_of_peak", "Offline: executed work, % of the GEMM peak",
                  "Offline: useful work (no padding), % of the GEMM peak", "Roofline: executed vs useful work"))
    serving = "kserve-v2"

    def scenarios(self, requested):
        chosen = [n for n in requested if registry.load(registry.SCENARIOS, n).kind == self.name]
        return chosen or list(requested)

    def fidelity_key(self, variants):
        """Classifiers keep their top class; other models the cosine of their outputs."""
        if any("top1_agreement" in (v.fidelity or {}) for v in variants):
            return "top1_agreement", "top-1 agree"
        return "cos_min", "cos min"

    def report_plots(self, variants):
        """Classifiers: does the top class survive; other models: how close the outputs stay."""
        key, _ = self.fidelity_key(variants)
        if key == "cos_min":
            return self.plots
        return (Plot(self.plots[0].x, "fidelity.top1_agreement", self.plots[0].x_label,
                     "fidelity: top-1 agreement with FP32", self.plots[0].title), *self.plots[1:])

    def reference_job(self, artifact, workload, eval_indices, threads, work, cache_dir, evaluators, generation):
        for name in registry.RUNTIMES:
            runtime = runtimes.get(name)
            if artifact.format in runtime.formats and "fp32" in runtime.precisions and runtime.available():
                return reference, (name, artifact, workload, eval_indices, threads, work / "reference.npy", evaluators)
        raise RuntimeUnavailable(f"no installed runtime loads a {artifact.format} model to compute the FP32 reference",
                                 "pip install 'inferarena[all]'")

    def reference_environment(self, reference_path):
        path = reference_task_path(Path(reference_path))
        return {"task_reference": json.loads(path.read_text()) if path.is_file() else []}

    # Measured by jobs.measure: these are its steps for an embedding or a classifier.
    def strategy(self, spec, workload):
        return ShapeStrategy(spec.shape)

    def check(self, session, job, strategy):
        from inferarena.evaluators.fidelity import score

        got = outputs(session, job.workload, job.eval_indices, strategy, job.settings.batch_size)
        fidelity = score(got, np.load(job.reference_path, allow_pickle=False),
                         classes=job.artifact.meta.get("outputs") == "class_logits")
        return fidelity.as_dict(), _adaptive(job.artifact.meta.get("adaptive"), session.adaptive_stats(reset=True))

    def mismatch(self, fidelity, job):
        from inferarena.evaluators.fidelity import Fidelity

        spec = job.spec
        return _mismatch(Fidelity(**fidelity), job.settings.fidelity, lossy=spec.lossy or spec.precision in LOSSY)

    def before_scenarios(self, result, session, job, strategy):
        result.task = task_scores(session, job.workload, job.evaluators, strategy)

    def estimates(self, session, job, strategy):
        return _estimates(session, job.workload, strategy, job.settings, job.first_round)

    def context(self, job):
        precision = "int8" if job.spec.precision == "mixed" else job.spec.precision
        return {"peak_gflops": job.peaks.get(precision),
                "best_peak": max(job.peaks.items(), key=lambda kv: kv[1], default=None)}


def reference(runtime_name: str, artifact, workload: Workload, indices: list[int], threads: int, out: Path,
              evaluators: tuple[str, ...] = ()) -> str:
    """FP32 outputs of the source model, one sample at a time with the least padding; the FP32 task
    scores go next to them (`reference_task_path`)."""
    runtime = registry.load(registry.RUNTIMES, runtime_name)
    strategy = workload.strategies[-1]
    session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": threads}), workload.input_shapes(strategy))
    np.save(out, outputs(session, workload, indices, strategy, batch=1))
    reference_task_path(out).write_text(json.dumps([t.as_dict() for t in task_scores(session, workload, evaluators)]))
    return str(out)


def reference_task_path(reference: Path) -> Path:
    return Path(reference).with_suffix(".task.json")


def task_scores(session: Session, workload: Workload, evaluators: tuple[str, ...],
                strategy: ShapeStrategy = ShapeStrategy.dynamic) -> list[TaskScore]:
    """Each evaluator's metric on this session's embeddings; a failure is reported, not raised."""
    from inferarena.evaluators.task import evaluate

    def embed(texts: list[str]) -> np.ndarray:
        return next(iter(session.predict(workload.encode(texts, strategy)).values()))

    scores = []
    for name in evaluators:
        try:
            scores.append(TaskScore.of(evaluate(registry.load(registry.EVALUATORS, name)(download=False), embed,
                                                batch_size=8)))
        except Exception as exc:  # one broken metric must not cost the variant its measurements
            scores.append(TaskScore(name, error=f"{type(exc).__name__}: {exc}"[:300]))
    return scores


def _adaptive(static: dict | None, decided: dict | None) -> dict | None:
    """The `adaptive.*` figures: what the pass fixed (a dropped layer count), then what the session decided
    on the evaluation samples at this variant's shape and batch (layers per input, tokens kept)."""
    if not static and not decided:
        return None
    return {**(static or {}), **(decided or {})}


def _mismatch(fidelity, bounds, lossy: bool) -> str | None:
    bound = bounds.min_cos_lossy if lossy else bounds.min_cos
    if fidelity.cos_min < bound:
        return f"cos_min {fidelity.cos_min:.4f} < {bound}"
    if bounds.max_abs_diff is not None and fidelity.max_abs_diff > bounds.max_abs_diff:
        return f"max_abs_diff {fidelity.max_abs_diff:.3g} > {bounds.max_abs_diff}"
    return None


def _estimates(session: Session, workload: Workload, strategy: ShapeStrategy, settings,
               first_round) -> Estimates:  # first_round: jobs.FirstRound | None
    if not first_round or not first_round.estimates:
        return warm_up(session, workload, strategy, settings.loadgen.multi_stream_samples_per_query, settings.batch_size)
    session.predict(workload.collate([0], strategy))  # warm, do not re-time: each round is a fresh process
    offline_pass(session, workload, strategy, settings.batch_size, WARM_S, every_width(workload, strategy,
                                                                                      settings.batch_size))
    return Estimates(**first_round.estimates)


# Seconds of Offline-shaped batches run before the measurement, so that a runtime which compiles or plans
# per input shape (OpenVINO and ORT with dynamic shapes) has seen the shapes Offline will send.
WARM_S = 2.0


def every_width(workload: Workload, strategy: ShapeStrategy, batch_size: int) -> list[list[int]]:
    """One full batch for each padded shape Offline can send (each distinct sample length under dynamic
    shapes, each bucket edge under bucketed, one under fixed): the batch of the shortest samples that
    reaches it, in the length order Offline sorts by."""
    order, step = workload.serving_order(strategy), workload.batch_limit(batch_size)
    chunks, seen = [], set()
    for end in range(min(step, len(order)), len(order) + 1):
        chunk = order[end - step : end] if end >= step else order[:end]
        if strategy is ShapeStrategy.fixed and chunks:
            break
        shape = tuple((name, a.shape) for name, a in workload.collate(chunk, strategy).items())
        if shape not in seen:
            seen.add(shape)
            chunks.append(chunk)
    return chunks


def offline_pass(session: Session, workload: Workload, strategy: ShapeStrategy, batch_size: int,
                 budget_s: float, chunks: list[list[int]] | None = None) -> tuple[int, float]:
    """Batches as Offline serves them (sorted by length unless fixed, as many in flight as the session has
    streams), until the workload is done or `budget_s` has passed; returns (samples, seconds). `chunks`:
    these batches of sample indices instead."""
    order, step = workload.serving_order(strategy), workload.batch_limit(batch_size)
    served, start = [0], time.perf_counter()

    def batches():
        for chunk in chunks or [order[i : i + step] for i in range(0, len(order), step)]:
            yield workload.collate(chunk, strategy)
            served[0] += len(chunk)
            if time.perf_counter() - start > budget_s:
                return

    submit_all(session, batches())
    return served[0], time.perf_counter() - start


def warm_up(session: Session, workload: Workload, strategy: ShapeStrategy, per_query: int, batch_size: int) -> Estimates:
    """Warm the session and time it roughly, so LoadGen can size its query schedule."""
    n = len(workload)

    def timed(count: int, repeats: int) -> float:
        times = []
        for r in range(repeats):
            indices = [(r * max(count, n // repeats) + i) % n for i in range(count)]
            batch = workload.collate(indices, strategy)
            start = time.perf_counter()
            session.predict(batch)
            times.append(time.perf_counter() - start)
        return float(np.median(times[1:] if len(times) > 1 else times))

    single = timed(1, 6)
    chunk = workload.batch_limit(per_query)
    multi = timed(chunk, 3) * -(-per_query // chunk)
    offline_pass(session, workload, strategy, batch_size, WARM_S, every_width(workload, strategy, batch_size))
    # Then a short pass timed as Offline runs, which sizes LoadGen's query.
    samples, seconds = offline_pass(session, workload, strategy, batch_size, 0.5)
    return Estimates(latency_s_single=single, latency_s_multi=multi, throughput_sps=samples / seconds)
