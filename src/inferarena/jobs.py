"""What a job does for one candidate, wherever a launcher runs it: build, reference, measure, peaks.

The orchestrator hands these functions to a launcher (`inferarena.launchers`): in their own process
by default, so they may import any framework. What a measurement does depends on the model's kind,
which the job asks (`kinds`); this module never branches on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from inferarena import kinds, passes
from inferarena.artifacts import Artifact, PassRun
from inferarena.config import EnergyConfig, FidelityConfig, GenerationConfig, LoadGenConfig, RunConfig
from inferarena.hardware import GemmPeaks, MemoryBandwidth, host
from inferarena.results import VariantResult, VariantSpec
from inferarena.trackers.cost import Price
from inferarena.workloads.base import Workload


@dataclass(frozen=True)
class Built:
    """What a variant's passes made: the artifact to deploy, and the chain of pass runs that made it (each
    cached or not). With no passes, the model as given."""

    artifact: Artifact
    passes: tuple[PassRun, ...] = ()

    def stamp(self, result: VariantResult) -> VariantResult:
        """The measured result with what it was measured on: the artifact's path (what to deploy) and, where
        passes ran, their chain and what they report; a model with layers dropped counts as mixed precision."""
        if not self.passes:
            return dataclasses.replace(result, artifact=str(self.artifact.path))
        kept = self.artifact.meta.get("kept_layers")
        return dataclasses.replace(result, artifact=str(self.artifact.path), passes=list(self.passes),
                                   kept_layers=kept, pass_report=self.artifact.meta.get("pass_report"),
                                   **({"precision": "mixed"} if kept else {}))


def build(steps: tuple, artifact: Artifact, cache_dir: Path, context) -> Built:
    """A variant's passes (each cached by content hash), with what ran and what came from cache."""
    built, applied = passes.apply(steps, artifact, cache_dir, context)
    return Built(built, tuple(applied))


@dataclass(frozen=True)
class MeasureSettings:
    """The slice of the run config a measurement needs, and nothing else."""

    scenarios: tuple[str, ...]
    quick: bool
    batch_size: int  # Offline and the fidelity check, unless the variant sets its own
    planned_rounds: int  # under --quick the rounds share the quick duration
    loadgen: LoadGenConfig
    fidelity: FidelityConfig
    energy: EnergyConfig
    generation: GenerationConfig

    @classmethod
    def of(cls, config: RunConfig) -> MeasureSettings:
        return cls(tuple(config.scenarios), config.quick, config.workload.batch_size,
                   config.rounds.planned(config.quick), config.loadgen, config.fidelity, config.energy,
                   config.generation)


@dataclass(frozen=True)
class FirstRound:
    """What a variant's later rounds take from its first: the same model gives the same outputs, so its
    fidelity and adaptive statistics stand, and its warm-up estimates size the same schedule."""

    fidelity: dict | None
    estimates: dict | None
    adaptive: dict | None

    @classmethod
    def of(cls, result) -> FirstRound:
        return cls(result.fidelity, result.estimates, result.adaptive)


@dataclass
class MeasureJob:
    spec: VariantSpec
    artifact: Artifact
    workload: Workload
    reference_path: str
    eval_indices: list[int]
    settings: MeasureSettings
    price: Price | None = None
    peaks: dict[str, float] = field(default_factory=dict)  # GEMM GFLOP/s by precision
    evaluators: tuple[str, ...] = ()  # task metrics to score (their data already fetched)
    # Later rounds: the first round's fidelity and warm-up estimates (the same model gives the same
    # outputs), so they only warm the session briefly and go straight to the scenarios.
    first_round: FirstRound | None = None
    bandwidth_gb_per_s: float | None = None  # this machine's read bandwidth (decode roofline)


def measure(job: MeasureJob) -> VariantResult:
    """One round of one variant: load it, check its outputs against the reference (the first round; later
    rounds reuse its figures), warm it up, run each scenario on it, close it. Its kind supplies the steps
    that differ (`kinds.base.Measures`)."""
    import time
    from dataclasses import asdict

    from inferarena import registry
    from inferarena.errors import ConfigError
    from inferarena.kinds.base import Measures
    from inferarena.runtimes.base import on_device
    from inferarena.scenarios.base import ScenarioContext, run_scenario
    from inferarena.trackers.energy import EnergyMeter
    from inferarena.trackers.memory import MemoryTracker

    spec, settings, workload = job.spec, job.settings, job.workload
    kind = kinds.get(spec.kind)
    if not isinstance(kind, Measures):
        raise ConfigError(f"variants of kind {spec.kind} are not measured here", "see the kind's own command")
    runtime = registry.load(registry.RUNTIMES, spec.runtime)
    strategy = kind.strategy(spec, workload)
    started = time.perf_counter()
    with MemoryTracker() as memory:
        session = runtime().load(job.artifact, spec.load_precision, runtime.validate_knobs(spec.knobs),
                                 workload.input_shapes(strategy), **on_device(spec))
        try:
            load_s = time.perf_counter() - started
            if job.first_round:
                fidelity, adaptive = job.first_round.fidelity, job.first_round.adaptive
            else:
                session.adaptive_stats(reset=True)
                fidelity, adaptive = kind.check(session, job, strategy)
            result = VariantResult.of(spec, fidelity=fidelity, session_info=kind.session_info(session),
                                      load_s=round(load_s, 3), adaptive=adaptive)
            mismatch = kind.mismatch(fidelity, job)
            if mismatch:
                result.status, result.error = "failed", f"output mismatch: {mismatch}"
                return result
            kind.before_scenarios(result, session, job, strategy)
            energy = EnergyMeter(host(), settings.energy.tdp_w, settings.energy.tdp_threads, settings.energy.idle_s,
                                 device=spec.device)
            estimates = kind.estimates(session, job, strategy)
            ctx = ScenarioContext(session=session, workload=workload, strategy=strategy,
                                  batch_size=spec.batch_size or settings.batch_size, quick=settings.quick,
                                  settings=settings.loadgen, estimates=estimates, energy=energy, price=job.price,
                                  rounds=settings.planned_rounds, **kind.context(job))
            result.estimates = asdict(estimates)
            for name in settings.scenarios:  # already the kind's choice (the sweep asked `scenarios()`)
                measured = run_scenario(name, ctx)
                measured.metrics.update(kind.after_scenario(measured.metrics, session, job))
                result.scenarios[name] = measured
        finally:
            session.close()
    result.memory = memory.result.as_dict()
    return result


def bandwidth(cache_dir: Path, threads: int, refresh: bool = False, device: str = "cpu") -> MemoryBandwidth:
    """The device's memory bandwidth (cached per machine): the CPU's read and triad, or a GPU's HBM copy
    bandwidth; needs torch."""
    if device != "cpu":
        from inferarena.trackers import peak

        return MemoryBandwidth.of(peak.gpu_bandwidth(peak.load_or_measure(cache_dir, host(), threads, refresh, device)))
    from inferarena.trackers import bandwidth as tracker

    return MemoryBandwidth.of(tracker.load_or_measure(cache_dir, host(), threads, refresh))


def peaks(cache_dir: Path, threads: int, refresh: bool = False, device: str = "cpu") -> GemmPeaks:
    """The device's GEMM peaks (cached per machine): the CPU's, or the GPU's for `device="cuda"`; needs torch."""
    from inferarena.trackers import peak

    return GemmPeaks.of(peak.load_or_measure(cache_dir, host(), threads, refresh, device))
