"""What a kind of model declares, so the core never branches on it.

A kind (`predict`: one batch in, one output out; `generate`: token streams) says which scenarios
measure it, how its FP32 reference and its variants are measured (the worker jobs), which profiles
and trade-offs decide a pick, how its report shows fidelity, and how serve-bench serves it. The
orchestrator, search, recommend, the reports and serve-bench ask the kind of their model or run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

from inferarena.results import higher_is_better, metric
from inferarena.scenarios.base import QUICK_NOTE


class _Catalogued:
    """Direction and unit of a flat figure, read from the metric catalogue, never declared again."""

    key: str

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.key)

    @property
    def unit(self) -> str:
        found = metric(self.key)
        return found.unit if found else ""


@dataclass(frozen=True)
class Profile(_Catalogued):
    """A priority a pick serves: the flat figure that decides it, and how its CI is drawn."""

    name: str
    key: str  # flat metric key that decides
    label: str
    # How to bootstrap the figure from (variant, scenario) samples; None: a single reading, no CI.
    scenario: str | None = None
    percentile: float | None = None
    summary: str = ""
    # Energy and cost per query are price (or power) ÷ throughput: their CI comes from the throughput's.
    per_query: bool = False


@dataclass(frozen=True)
class Figure(_Catalogued):
    """A flat figure shown or weighed by name (trade-offs, Pareto axes, table columns)."""

    key: str
    label: str
    fmt: str = ""  # a format spec for tables; "" lets the table choose


@dataclass(frozen=True)
class Constraint(_Catalogued):
    """A user's bound (`--max-p99-ms`, `--min-cos`...) on one of the kind's flat figures."""

    key: str
    bound: str  # "max" or "min"
    label: str


@dataclass(frozen=True)
class Plot:
    """A Pareto plot of the HTML report: x and y flat keys (directions from the catalogue) and labels."""

    x: str
    y: str
    x_label: str
    y_label: str
    title: str


@dataclass(frozen=True)
class Column:
    """A column of the fidelity table: a figure of `fidelity` (or `memory`, `load_s`), optionally "x/of"."""

    key: str
    header: str
    fmt: str = ""
    of: str | None = None  # a second fidelity field shown after a slash ("1st diff at" 12/32)
    optional: bool = False  # shown only when some variant has it


class Measures:
    """What a kind measured by `jobs.measure` (one skeleton for every kind: load, check against the
    reference, warm up, run each scenario, close) supplies as hooks. Kinds measured elsewhere (a workflow,
    by `inferarena agents`) do not have them."""

    def reference_job(self, artifact, workload, eval_indices: list[int], threads: int, work: Path,
                      cache_dir: Path | None, evaluators: tuple[str, ...], generation) -> tuple[Callable, tuple]:
        """The worker function and arguments that compute the FP32 reference; raises a user error when
        no installed runtime can (before any worker starts)."""
        raise NotImplementedError

    def reference_environment(self, reference_path: str) -> dict[str, Any]:
        """What the run's environment card keeps of the reference (its task scores, perplexity...)."""
        raise NotImplementedError

    def strategy(self, spec, workload):
        """The shape strategy the session is loaded and fed with."""
        raise NotImplementedError

    def check(self, session, job, strategy) -> tuple[dict, dict | None]:
        """The variant's fidelity against the reference (as stored) and its adaptive figures, on the
        evaluation inputs: the first round's work, which later rounds reuse."""
        raise NotImplementedError

    def mismatch(self, fidelity: dict, job) -> str | None:
        """Why these outputs fail the run's fidelity bounds (the variant then fails), or None."""
        return None

    def session_info(self, session) -> dict:
        return dict(session.info)

    def before_scenarios(self, result, session, job, strategy) -> None:
        """Figures taken once the outputs passed, before the load (e.g. task metrics)."""

    def estimates(self, session, job, strategy):
        """Warm the session up and time it, to size LoadGen's schedule (reused from the first round)."""
        raise NotImplementedError

    def context(self, job) -> dict:
        """The kind's own ScenarioContext fields (GEMM peaks, generation settings)."""
        return {}

    def after_scenario(self, metrics: dict, session, job) -> dict:
        """Figures derived from a scenario's (e.g. the decode roofline)."""
        return {}


class Kind(ABC):
    name: ClassVar[str]
    profiles: ClassVar[dict[str, Profile]]
    trade_offs: ClassVar[tuple[Figure, ...]]  # the first two are the latency and throughput axes of "balanced"
    constraints: ClassVar[dict[str, Constraint]]
    judged_by: ClassVar[dict[str, tuple[str, ...]]]  # profile -> the scenarios a search measures for it
    search_batch_sizes: ClassVar[tuple[int, ...]]  # the batch-size dimension of throughput-like searches
    fidelity_title: ClassVar[str]
    fidelity_columns: ClassVar[tuple[Column, ...]]
    pareto_title: ClassVar[str]
    pareto_columns: ClassVar[tuple[Figure, ...]]
    plots: ClassVar[tuple[Plot, ...]]
    serving: ClassVar[str]  # serve-bench's route: the wire protocol its servers speak
    needs_bandwidth: ClassVar[bool] = False  # its roofline is memory bandwidth (decode), not only GEMM peaks
    modes: ClassVar[tuple[str, str]] = (QUICK_NOTE, "MLPerf-compliant durations")  # quick, full

    def mode(self, quick: bool) -> str:
        """How a run of this kind was measured, in a few words for a report's header."""
        return self.modes[0] if quick else self.modes[1]

    @abstractmethod
    def scenarios(self, requested: list[str]) -> list[str]:
        """The scenarios a run measures, from the ones its config asks for."""

    def report_plots(self, variants) -> tuple[Plot, ...]:
        """The Pareto plots of the HTML report for these variants."""
        return self.plots

    def tables(self, run) -> list[tuple[str, list[str], list[list[str]]]]:
        """Tables of the kind's own, shown after the leaderboards: (title, headers, rows of cells)."""
        return []

    def findings(self, run) -> list[str]:
        """Sentences that answer the run's question (shown after the tables and in the HTML report)."""
        return []

    def reproduce_command(self, run, pick) -> str | None:
        """The command that measures `pick` again, for kinds measured by a command of their own; None: the
        pick is reproduced by `inferarena run --config` (a config recommend writes)."""
        return None

    def document(self, run) -> dict[str, Any]:
        """Keys of the kind's own in the run's --json."""
        return {}

    def fidelity_of(self, variant) -> dict[str, Any]:
        """The figures its `fidelity_columns` and `fidelity_key` read: how close it stays to the reference."""
        return variant.fidelity or {}

    def fidelity_key(self, variants) -> tuple[str, str]:
        """The fidelity figure a leaderboard shows next to the timings: (fidelity field, header)."""
        return "cos_min", "cos min"
