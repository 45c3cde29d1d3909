"""The LoadGen harness every scenario shares: QSL, SUT plumbing, log parsing and trackers.

A scenario only says how to configure LoadGen, how its SUT answers queries, and which figures it
reports. All timing is LoadGen's; trackers add memory and CPU figures over the same window.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from inferarena.config import LoadGenConfig, ShapeStrategy
from inferarena.runtimes.base import Session
from inferarena.trackers.cpu import CpuTracker
from inferarena.trackers.memory import MemoryTracker
from inferarena.workloads.base import Workload

QUICK_NOTE = "quick (not MLPerf-compliant)"
# MLPerf Inference rules (mlperf.conf): every scenario runs at least 600 s.
COMPLIANT_MIN_DURATION_MS = 600_000


@dataclass
class Estimates:
    """Warm-up timings that size LoadGen's query schedule (LoadGen needs an expected rate up front)."""

    latency_s_single: float
    latency_s_multi: float
    throughput_sps: float


@dataclass
class ScenarioContext:
    session: Session
    workload: Workload
    strategy: ShapeStrategy
    batch_size: int
    quick: bool
    settings: LoadGenConfig
    estimates: Estimates
    # Single-sample batches LoadGen asked to load, by sample index.
    cache: dict[int, Any] = field(default_factory=dict)


@dataclass
class ScenarioResult:
    scenario: str
    valid: bool
    invalid_reason: str | None
    mode: str  # "quick (not MLPerf-compliant)" or "compliant"
    metrics: dict[str, float]  # unit in every name
    loadgen: dict[str, Any] = field(default_factory=dict)  # LoadGen's own result_* and effective_* figures


class Scenario(ABC):
    name: ClassVar[str]
    lg_scenario: ClassVar[str]  # mlperf_loadgen.TestScenario member
    metric: ClassVar[str]  # the figure the leaderboard ranks by
    ranking: ClassVar[str]  # the same, in words for the leaderboard's title
    columns: ClassVar[tuple[tuple[str, str], ...]]  # (metric key, header) shown in its leaderboard
    higher_is_better: ClassVar[bool] = False

    @classmethod
    def rank_key(cls, metrics: dict[str, float]) -> tuple:
        """Sort key for leaderboards: best first. Missing figures sort last."""
        value = metrics.get(cls.metric)
        if value is None or value != value:  # missing or NaN
            return (1, 0.0)
        return (0, -value if cls.higher_is_better else value)

    @abstractmethod
    def configure(self, settings: Any, ctx: ScenarioContext) -> None:
        """Set the scenario's TestSettings fields (durations, counts, expected rates)."""

    @abstractmethod
    def issue(self, ctx: ScenarioContext, queries: list, complete) -> None:
        """Answer LoadGen's queries; call `complete(queries)` once their outputs are ready."""

    @abstractmethod
    def figures(self, log: dict[str, Any]) -> dict[str, float]:
        """This scenario's figures from LoadGen's detail log."""

    def start(self, ctx: ScenarioContext, complete) -> None:  # noqa: B027 - optional hook
        """Start helper threads before the test, if the SUT needs any."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    def run(self, ctx: ScenarioContext) -> ScenarioResult:
        import mlperf_loadgen as lg

        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, self.lg_scenario)
        settings.mode = lg.TestMode.PerformanceOnly
        self.configure(settings, ctx)

        cache, workload, strategy = ctx.cache, ctx.workload, ctx.strategy

        def load(indices):
            for i in indices:
                cache[i] = workload.collate([i], strategy)

        def unload(indices):
            for i in indices:
                cache.pop(i, None)

        failures: list[BaseException] = []

        def complete(queries):
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in queries])

        def issue(queries):
            try:
                self.issue(ctx, queries, complete)
            except BaseException as exc:  # LoadGen's thread must not see it; re-raised after the test
                failures.append(exc)
                complete(queries)

        qsl = lg.ConstructQSL(len(workload), len(workload), load, unload)
        sut = lg.ConstructSUT(issue, lambda: None)
        self.start(ctx, complete)
        with tempfile.TemporaryDirectory(prefix="loadgen-") as out:
            log_settings = lg.LogSettings()
            log_settings.log_output.outdir = out
            log_settings.log_output.copy_summary_to_stdout = False
            log_settings.enable_trace = False
            try:
                with MemoryTracker() as memory, CpuTracker() as cpu:
                    lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
            finally:
                self.stop()
                lg.DestroySUT(sut)
                lg.DestroyQSL(qsl)
            log = parse_detail_log(Path(out) / "mlperf_log_detail.txt")
        if failures:
            raise failures[0]
        valid = log.get("result_validity") == "VALID"
        reason = None if valid else invalid_reason(log)
        metrics = {**self.figures(log), **memory.result.as_dict(), **cpu.result.as_dict()}
        return ScenarioResult(
            scenario=self.name,
            valid=valid,
            invalid_reason=reason.strip() if reason else None,
            mode=QUICK_NOTE if ctx.quick else "compliant",
            metrics={k: float(v) for k, v in metrics.items() if v is not None},
            loadgen={k: v for k, v in log.items() if k.startswith(("result_", "effective_", "early_stopping", "errors"))},
        )


def invalid_reason(log: dict[str, Any]) -> str:
    """Why LoadGen said INVALID, in its own words where it gave any."""
    reasons = [str(log.get("result_invalid_reason") or "").strip()]
    if log.get("early_stopping_met") is False:
        reasons.append("early stopping not met (too few queries to bound the percentile)")
    if log.get("result_min_duration_met") is False:
        reasons.append("min duration not met")
    if log.get("result_min_queries_met") is False:
        reasons.append("min query count not met")
    if log.get("result_perf_constraints_met") is False:
        reasons.append("latency bound not met")
    reasons += log.get("errors", [])
    unique = list(dict.fromkeys(r for r in reasons if r))
    return "; ".join(unique) or "LoadGen gave no reason"


def parse_detail_log(path: Path) -> dict[str, Any]:
    """LoadGen's `:::MLLOG {json}` lines as key -> value; error messages gathered under 'errors'."""
    found: dict[str, Any] = {"errors": []}
    if not path.is_file():
        return found
    for line in path.read_text(errors="replace").splitlines():
        _, marker, payload = line.partition(":::MLLOG")
        if not marker:
            continue
        try:
            record = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if record.get("metadata", {}).get("is_error"):
            found["errors"].append(str(record.get("value")))
        found[record["key"]] = record.get("value")
    return found
