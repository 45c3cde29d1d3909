"""The LoadGen harness every scenario shares: QSL, SUT plumbing, log parsing and trackers.

A scenario only says how to configure LoadGen, how its SUT answers queries, and which figures it
reports. All timing is LoadGen's; trackers add memory, CPU, energy, work (FLOPs) and cost figures
over the same window. "Per query" in those figures means per inference (one sample).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from inferarena import registry, stats
from inferarena.config import LoadGenConfig, ShapeStrategy
from inferarena.results import ScenarioResult, higher_is_better
from inferarena.runtimes.base import Session
from inferarena.trackers.cost import Price, usd_per_million
from inferarena.trackers.cpu import CpuTracker
from inferarena.trackers.energy import EnergyMeter
from inferarena.trackers.memory import MemoryTracker
from inferarena.trackers.work import CountingSession, work_figures
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
    session: Any  # a Session, or a GenerativeSession for generation scenarios
    workload: Workload
    strategy: ShapeStrategy
    batch_size: int
    quick: bool
    settings: LoadGenConfig
    estimates: Estimates
    energy: EnergyMeter | None = None
    price: Price | None = None
    peak_gflops: float | None = None  # the GEMM peak for this variant's precision
    # The host's fastest precision and its GEMM peak (INT8 where the CPU has VNNI or AMX): the headroom's yardstick.
    best_peak: tuple[str, float] | None = None
    rounds: int = 1  # under --quick, each of this many rounds runs 1/rounds of the quick duration
    generation: Any = None  # GenerationConfig, for generation scenarios
    # Single-sample batches LoadGen asked to load, by sample index.
    cache: dict[int, Any] = field(default_factory=dict)


class Scenario(ABC):
    name: ClassVar[str]
    kind: ClassVar[str] = "predict"  # the runtime kind (Runtime.kind) whose sessions it drives
    lg_scenario: ClassVar[str]  # mlperf_loadgen.TestScenario member
    metric: ClassVar[str]  # the figure the leaderboard ranks by
    ranking: ClassVar[str]  # the same, in words for the leaderboard's title
    columns: ClassVar[tuple[tuple[str, str], ...]]  # (metric key, header) shown in its leaderboard
    # Headline figures repeated under a prefix in the flat keys: (prefix, key, this scenario's metric),
    # e.g. ("generation", "ttft_ms_p50", "ttft_ms_p50") gives `generation.ttft_ms_p50`.
    summary: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    # What rounds are compared on to call a measurement noisy: a central figure, since a p90 or p99
    # from a few dozen queries differs between rounds by sampling alone.
    spread_metric: ClassVar[str] = "latency_ms_p50"
    # How the ranking figure comes from the raw samples, for its CI (`stats.half_width_pct`): "pNN" (a
    # latency percentile) or "throughput" (Offline completion times); None where it is not a sample
    # statistic (Server ranks by the offered QPS).
    ci_statistic: ClassVar[str | None] = None
    short: ClassVar[str] = ""  # before its figures' short labels in table headers: "SS p90 ms"
    # Whether its per-sample latencies can show drift (first half vs second half); not where they are
    # completion times of one big query (Offline).
    drift_check: ClassVar[bool] = True
    # Whether LoadGen measured it, so its leaderboard shows LoadGen's verdict (VALID / INVALID).
    loadgen: ClassVar[bool] = True

    @classmethod
    def rank_key(cls, metrics: dict[str, float]) -> tuple:
        """Sort key for leaderboards: best first. Missing figures sort last."""
        value = metrics.get(cls.metric)
        if value is None or value != value:  # missing or NaN
            return (1, 0.0)
        return (0, -value if higher_is_better(cls.metric) else value)



class LoadGenScenario(Scenario):
    """A scenario LoadGen drives: how it sets LoadGen's TestSettings, answers its queries, and reads its figures
    from LoadGen's detail log; `run` is one test. (A `Scenario` alone only declares how its results rank and
    read, as the workflow scenario does, whose tasks `inferarena agents` measures.)"""

    # Tells LoadGen a query's first token (generation scenarios call it from `issue`); `run` binds it to the
    # test's system under test before the first query.
    first_token: Callable[[list], None]

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
        """One LoadGen test of this scenario on `ctx.session`: the SUT answers LoadGen's queries through
        `issue`, the trackers watch the test window, and the figures come from LoadGen's detail log."""
        import mlperf_loadgen as lg

        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, self.lg_scenario)
        settings.mode = lg.TestMode.PerformanceOnly
        self.configure(settings, ctx)
        # FLOPs are counted for batch-at-a-time sessions; generative ones report tokens instead.
        counted = CountingSession(ctx.session) if isinstance(ctx.session, Session) else None
        if counted is not None:
            ctx = dataclasses.replace(ctx, session=counted)
        sut = SystemUnderTest(lg, self, ctx, settings.use_token_latencies)
        self.first_token = sut.first_token
        trackers = [MemoryTracker(), CpuTracker(), *(ctx.energy.resource_trackers() if ctx.energy else [])]
        energy = ctx.energy.track() if ctx.energy else None
        log, seconds = self._test(lg, sut, ctx, settings, [*trackers, *([energy] if energy else [])])
        if sut.failures:
            raise sut.failures[0]
        metrics = self.figures(log)
        drift = stats.drift_pct(np.asarray(sut.latencies_ns, dtype=np.float64)) if self.drift_check else None
        if drift is not None:
            metrics["drift_pct"] = round(drift, 2)
        for tracker in trackers:
            metrics.update(tracker.result.as_dict())
        metrics.update(_efficiency(ctx, metrics, energy, counted, sut.done, seconds, sut.served))
        valid = log.get("result_validity") == "VALID"
        reason = None if valid else invalid_reason(log)
        return ScenarioResult(
            scenario=self.name,
            valid=valid,
            invalid_reason=reason.strip() if reason else None,
            mode=QUICK_NOTE if ctx.quick else "compliant",
            metrics={k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                     for k, v in metrics.items() if v is not None},
            loadgen={k: v for k, v in log.items() if k.startswith(("result_", "effective_", "early_stopping", "errors"))},
            latencies_ms=np.asarray(sut.latencies_ns, dtype=np.float64) / 1e6,
        )

    def _test(self, lg, sut: SystemUnderTest, ctx: ScenarioContext, settings, watching: list) -> tuple[dict, float]:
        """LoadGen's test with `watching` (trackers) entered around it: its detail log, and its wall seconds."""
        qsl = lg.ConstructQSL(len(ctx.workload), len(ctx.workload), sut.load, sut.unload)
        handle = lg.ConstructSUT(sut.issue, lambda: None)
        self.start(ctx, sut.complete)
        with tempfile.TemporaryDirectory(prefix="loadgen-") as out:
            log_settings = lg.LogSettings()
            log_settings.log_output.outdir = out
            log_settings.log_output.copy_summary_to_stdout = False
            log_settings.enable_trace = False
            try:
                with ExitStack() as stack:
                    for tracker in watching:
                        stack.enter_context(tracker)
                    started = time.perf_counter()
                    lg.StartTestWithLogSettings(handle, qsl, settings, log_settings)
                    seconds = time.perf_counter() - started
            finally:
                self.stop()
                lg.DestroySUT(handle)
                lg.DestroyQSL(qsl)
            return parse_detail_log(Path(out) / "mlperf_log_detail.txt"), seconds


class SystemUnderTest:
    """What LoadGen drives in one test, after MLPerf's reference SUT and Runner classes: it loads samples
    into the context's cache, hands issued queries to the scenario, and records every completion.

    It keeps per-sample latencies from issue to completion (LoadGen reports only percentiles, and
    comparing runs needs the raw samples: two dict operations per sample), the samples served by index
    (the useful work is counted from them), and the scenario's failures, which LoadGen's thread must
    not see: they are re-raised after the test."""

    def __init__(self, lg, scenario: Scenario, ctx: ScenarioContext, token_latencies: bool):
        self.lg, self.scenario, self.ctx, self.token_latencies = lg, scenario, ctx, token_latencies
        self.issued: dict[int, int] = {}  # query id -> issue time (ns)
        self.latencies_ns: list[int] = []
        self.served: Counter = Counter()
        self.done = 0  # samples completed
        self.failures: list[BaseException] = []
        self.lock = threading.Lock()  # sessions with streams complete from their own threads

    def load(self, indices) -> None:
        for i in indices:
            self.ctx.cache[i] = self.ctx.workload.collate([i], self.ctx.strategy)

    def unload(self, indices) -> None:
        for i in indices:
            self.ctx.cache.pop(i, None)

    def issue(self, queries) -> None:
        now = time.perf_counter_ns()
        for q in queries:
            self.issued[q.id] = now
        try:
            self.scenario.issue(self.ctx, queries, self.complete)
        except BaseException as exc:  # LoadGen's thread must not see it; re-raised after the test
            self.failures.append(exc)
            with self.lock:  # complete what is still open, once
                queries = [q for q in queries if q.id in self.issued]
            # With token latencies on, LoadGen needs a token count (and a first token) for every response.
            if self.token_latencies:
                self.first_token(queries)
                self.complete(queries, tokens=[1] * len(queries))
            else:
                self.complete(queries)

    def complete(self, queries, tokens: list[int] | None = None) -> None:
        """Queries done; generative scenarios pass each one's output token count (LoadGen's TPOT needs it)."""
        now = time.perf_counter_ns()
        with self.lock:
            self.latencies_ns.extend(now - self.issued.pop(q.id, now) for q in queries)
            self.done += len(queries)
            self.served.update(q.index for q in queries)
        lg = self.lg
        if tokens is None:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in queries])
        else:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0, n) for q, n in zip(queries, tokens)])

    def first_token(self, queries) -> None:
        self.lg.FirstTokenComplete([self.lg.QuerySampleResponse(q.id, 0, 0) for q in queries])


def _efficiency(ctx: ScenarioContext, metrics: dict, energy_tracker, counted: CountingSession | None,
                samples: int, seconds: float, served: Counter) -> dict[str, Any]:
    """Energy and cost per inference, and work figures, from the window's samples and duration."""
    figures: dict[str, Any] = {}
    if counted:
        useful = Counter()  # the unpadded shape of every sample served, as often as it was served
        for index, times in served.items():
            useful[ctx.workload.unpadded_shapes(index)] += times
        figures = work_figures(counted, samples, seconds, ctx.peak_gflops, useful, ctx.best_peak)
    if energy_tracker is not None and samples:
        energy = energy_tracker.result
        figures.update(energy_j_per_query=energy.energy_j / samples, power_w_avg=energy.power_w_avg,
                       energy_source=energy.energy_source, energy_basis=energy.energy_basis)
    tokens = metrics.get("output_tokens")
    if energy_tracker is not None and tokens:
        figures["energy_j_per_token"] = energy_tracker.result.energy_j / tokens
    throughput = metrics.get("throughput_sps") or (samples / seconds if seconds > 0 else 0.0)
    if ctx.price and throughput:
        figures.update(cost_usd_per_1m=usd_per_million(ctx.price, throughput), cost_basis=ctx.price.label)
    if ctx.price and metrics.get("tokens_per_s"):
        figures["cost_usd_per_1m_tokens"] = usd_per_million(ctx.price, metrics["tokens_per_s"])
    return figures


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


def run_scenario(name: str, ctx: ScenarioContext) -> ScenarioResult:
    """One registered scenario on a session; one that breaks is recorded, so the others still run."""
    scenario = registry.load(registry.SCENARIOS, name)()
    try:
        return scenario.run(ctx)
    except Exception as exc:
        return ScenarioResult(name, False, f"error: {type(exc).__name__}: {exc}"[:300], "error", {})
