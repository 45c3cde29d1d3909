"""What a job does for one candidate, wherever a launcher runs it: build, reference, measure, peaks.

The orchestrator hands these functions to a launcher (`inferarena.launchers`): in their own process
by default, so they may import any framework. What a measurement does depends on the model's kind,
which the job asks (`kinds`); this module never branches on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inferarena import kinds, passes
from inferarena.artifacts import Artifact
from inferarena.config import EnergyConfig, FidelityConfig, GenerationConfig, LoadGenConfig, RunConfig
from inferarena.hardware import host
from inferarena.results import VariantResult, VariantSpec
from inferarena.trackers.cost import Price
from inferarena.workloads.base import Workload


def build(steps: tuple, artifact: Artifact, cache_dir: Path, context) -> tuple[Artifact, list[dict]]:
    """A variant's passes (each cached by content hash), with what ran and what came from cache."""
    return passes.apply(steps, artifact, cache_dir, context)


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
    first_round: dict | None = None
    bandwidth_gb_per_s: float | None = None  # this machine's read bandwidth (decode roofline)


def measure(job: MeasureJob) -> VariantResult:
    """One round of one variant, as its kind measures it."""
    return kinds.get(job.spec.kind).measure(job)


def bandwidth(cache_dir: Path, threads: int, refresh: bool = False, device: str = "cpu") -> dict:
    """The device's memory bandwidth (cached per machine): the CPU's read and triad, or a GPU's HBM copy
    bandwidth; needs torch."""
    if device != "cpu":
        from inferarena.trackers import peak

        return peak.gpu_bandwidth(peak.load_or_measure(cache_dir, host(), threads, refresh, device))
    from inferarena.trackers import bandwidth as tracker

    return tracker.load_or_measure(cache_dir, host(), threads, refresh)


def peaks(cache_dir: Path, threads: int, refresh: bool = False, device: str = "cpu") -> dict:
    """The device's GEMM peaks (cached per machine): the CPU's, or the GPU's for `device="cuda"`; needs torch."""
    from inferarena.trackers import peak

    return peak.load_or_measure(cache_dir, host(), threads, refresh, device)
