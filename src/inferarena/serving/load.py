"""LoadGen's Server scenario against a live endpoint, the search for the peak QPS within an SLA, and the
closed-loop concurrency sweep.

Each query is one request, sent from a pool of client threads (each with its own kept-alive
connection), so batching is the server's business. Poisson arrivals and every latency figure are
LoadGen's. The client's own cost is reported as `client_cpu_ms_per_query`: this process's CPU time over
the test divided by the queries completed. Bodies are encoded once per sample beforehand and
answers are only checked for their status, so that cost is LoadGen plus the HTTP exchange.

Every request's latency is also kept (from LoadGen's issue, so time queued behind busy client threads
counts), which gives each probe its SLO attainment and goodput (`slo.py`). A closed-loop point keeps N
requests in flight: N client threads each send the next request as soon as the last one answers, as
perf_analyzer's and GuideLLM's concurrency modes do; LoadGen has no such scenario, so it is timed here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from inferarena.config import LoadGenConfig, ShapeStrategy
from inferarena.runtimes.base import Session
from inferarena.scenarios.base import Estimates, ScenarioContext, ScenarioResult
from inferarena.scenarios.mlperf import Server
from inferarena.serving.clients import Client, RequestFailed
from inferarena.serving.records import LoadPoint
from inferarena.serving.slo import RequestTiming, Slo, attainment_pct
from inferarena.workloads.base import Workload


class _NoSession(Session):
    """The harness wraps a session for FLOP counting; a served model's work happens elsewhere."""

    input_names: list[str] = []
    info: dict[str, Any] = {}

    def predict(self, batch):
        raise NotImplementedError


class ServedServer(Server):
    """MLPerf's Server scenario (ranking, figures) with a SUT that sends each query to a live endpoint."""

    def __init__(self, targets: list[Target], target_qps: float, sla_ms: float, concurrency: int,
                 duration_ms: int, min_queries: int, percentile: float = 99.0):
        self.targets, self.percentile = targets, percentile
        self.target_qps, self.sla_ms, self.latency_bound_ms = target_qps, sla_ms, sla_ms
        self.concurrency, self.duration_ms, self.min_queries = concurrency, duration_ms, min_queries
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.requests: list[RequestTiming] = []  # every request, from LoadGen's issue to its answer
        # Per served model, when several share the server: our own request timings (LoadGen's are overall).
        self.timings: dict[str, list[float]] = {t.name: [] for t in targets}

    def configure(self, settings, ctx):
        settings.server_target_qps = self.target_qps
        settings.server_target_latency_ns = int(self.sla_ms * 1e6)
        settings.server_target_latency_percentile = self.percentile / 100
        settings.min_duration_ms = self.duration_ms
        settings.max_duration_ms = self.duration_ms * 3
        settings.min_query_count = self.min_queries

    def start(self, ctx, complete):
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="client")

    def issue(self, ctx, queries, complete):
        issued = time.perf_counter()
        for q in queries:
            self.pool.submit(self._one, q, complete, issued)

    def _one(self, query, complete, issued: float) -> None:
        target = self.targets[query.index % len(self.targets)]  # a mixed load: models take turns by sample
        started = time.perf_counter()
        try:
            target.client.post(target.bodies[query.index])
            done = time.perf_counter()
            self.timings[target.name].append((done - started) * 1000)
            self.requests.append(RequestTiming((done - issued) * 1000))
        except RequestFailed as exc:
            with self.lock:
                self.errors.append(str(exc))
            self.requests.append(RequestTiming(None))
        finally:
            complete([query])

    def stop(self):
        self.pool.shutdown(wait=True)

    def figures(self, log):
        return {
            **super().figures(log),
            "errors": float(len(self.errors)),
            **({f"{name}.{k}": v for name, times in self.timings.items() if times
                for k, v in (("latency_ms_p50", float(np.percentile(times, 50))),
                             ("latency_ms_p99", float(np.percentile(times, 99))), ("queries", float(len(times))))}
               if len(self.targets) > 1 else {}),
        }


@dataclass
class Target:
    """One served model: its name, the client that reaches it, and every sample as a request body."""

    name: str
    client: Client
    bodies: list[bytes]


@dataclass
class Probe:
    target_qps: float
    ok: bool
    metrics: dict[str, Any]
    error_sample: str | None = None
    repeat: bool = False  # a confirmation of an earlier probe at the same rate
    point: LoadPoint | None = None


@dataclass
class PeakSearch:
    peak_qps: float | None
    best: Probe | None
    probes: list[Probe] = field(default_factory=list)
    confirmed: bool | None = None  # the peak passed again when repeated (None: not repeated)
    repeat: Probe | None = None  # that repetition


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def point(mode: Literal["rate", "concurrency"], offered: float, timings: list[RequestTiming], seconds: float,
          slo: Slo, meets: bool | None = None, **figures: Any) -> LoadPoint:
    """A load point from every request's timing over `seconds`; `meets` overrides the attainment rule
    (LoadGen's verdict, for a rate)."""
    answered = [t.latency_ms for t in timings if t.latency_ms is not None]
    attained = attainment_pct(timings, slo)
    completed = len(answered) / seconds if seconds > 0 else None
    if meets is None:
        meets = attained is not None and attained >= slo.percentile and len(answered) == len(timings)
    return LoadPoint(mode, offered, len(timings), completed, _percentile(answered, 50), _percentile(answered, 90),
                     _percentile(answered, 99), attained,
                     completed * attained / 100 if completed is not None and attained is not None else None,
                     meets, len(timings) - len(answered), **figures)


def run_at(targets: list[Target], workload: Workload, target_qps: float, slo: Slo, concurrency: int,
           duration_ms: int) -> Probe:
    """One LoadGen Server test at `target_qps`; ok when the SLO's percentile of latency is within its bound
    (LoadGen's verdict) and no request failed. With several targets, each model gets every n-th sample (a
    mixed load) and its own p50/p99."""
    scenario = ServedServer(targets, target_qps, slo.latency_ms, concurrency, duration_ms,
                            min_queries=max(32, int(target_qps * duration_ms / 1000)), percentile=slo.percentile)
    ctx = ScenarioContext(session=_NoSession(), workload=workload, strategy=workload.strategies[0], batch_size=1,
                          quick=True, settings=LoadGenConfig(), estimates=Estimates(0.0, 0.0, target_qps))
    result: ScenarioResult = scenario.run(ctx)
    metrics = dict(result.metrics)
    if metrics.get("cpu_util_pct") is not None and metrics.get("completed_qps"):
        # CPU time of this (client) process per second of test, over queries per second.
        metrics["client_cpu_ms_per_query"] = 10 * metrics["cpu_util_pct"] / metrics["completed_qps"]
    ok = bool(metrics.get("latency_bound_met")) and not scenario.errors
    seconds = len(scenario.requests) / metrics["completed_qps"] if metrics.get("completed_qps") else 0.0
    measured = point("rate", target_qps, list(scenario.requests), seconds, slo, meets=ok)
    if metrics.get("completed_qps"):  # LoadGen's own rate and percentiles, where it has them
        measured.completed_qps = metrics["completed_qps"]
        measured.goodput_qps = (measured.completed_qps * measured.slo_attainment_pct / 100
                                if measured.slo_attainment_pct is not None else None)
    for key in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99"):
        if metrics.get(key) is not None:
            setattr(measured, key, metrics[key])
    metrics.update(slo_attainment_pct=measured.slo_attainment_pct, goodput_qps=measured.goodput_qps)
    return Probe(target_qps, ok, metrics, scenario.errors[0] if scenario.errors else None, point=measured)


def closed_loop(targets: list[Target], concurrency: int, duration_ms: int, slo: Slo) -> Probe:
    """`concurrency` requests kept in flight for `duration_ms`: each client thread sends its next request as
    soon as the last one answers. Requests take the samples in turn (and the targets in turn)."""
    timings: list[list[RequestTiming]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + duration_ms / 1000

    def worker(slot: int) -> None:
        k = slot
        while time.perf_counter() < stop_at:
            target = targets[k % len(targets)]
            sent = time.perf_counter()
            try:
                target.client.post(target.bodies[k % len(target.bodies)])
                timings[slot].append(RequestTiming((time.perf_counter() - sent) * 1000))
            except RequestFailed as exc:
                timings[slot].append(RequestTiming(None))
                errors.append(str(exc))
            k += concurrency

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    every = [t for mine in timings for t in mine]
    measured = point("concurrency", float(concurrency), every, seconds, slo)
    metrics = {k: v for k, v in measured.as_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return Probe(float(concurrency), measured.meets_slo, metrics, errors[0] if errors else None, point=measured)


def peak_qps(probe: Callable[[float], Probe], start_qps: float, max_probes: int = 9, precision: float = 0.1,
             min_qps: float = 0.5, repeats: int = 1) -> PeakSearch:
    """The highest target QPS whose probe passes: double from `start_qps` until one fails, then bisect
    until the bracket is within `precision` (relative) or the probes run out.

    One passing probe can be luck on a noisy machine, so the peak is then probed again, beyond
    `max_probes`: a rate that fails its repetition gives way to the next lower rate that passed,
    which is repeated in turn, for at most `repeats` + 1 repetitions. `confirmed` says whether the
    reported peak held."""
    search = PeakSearch(None, None)
    low, high, qps = None, None, start_qps
    while len(search.probes) < max_probes:
        result = probe(qps)
        search.probes.append(result)
        if result.ok:
            low = result
        else:
            high = result
        if low is None:
            qps = qps / 2 if high is not None else qps
            if qps < min_qps:
                break
            continue
        if high is None:
            qps = low.target_qps * 2
            continue
        if (high.target_qps - low.target_qps) / low.target_qps <= precision:
            break
        qps = (low.target_qps + high.target_qps) / 2
    if low is not None:
        search.peak_qps, search.best = low.target_qps, low
    passed = sorted((p for p in search.probes if p.ok), key=lambda p: -p.target_qps)
    for candidate in passed[:repeats + 1] if repeats else []:
        again = probe(candidate.target_qps)
        again.repeat = True
        search.probes.append(again)
        search.peak_qps, search.best, search.repeat, search.confirmed = candidate.target_qps, candidate, again, again.ok
        if again.ok or len([p for p in search.probes if p.repeat]) > repeats:
            break
    return search


def encode_bodies(client: Client, workload: Workload) -> list[bytes]:
    """Every sample as a ready request body (batch of one), in sample order."""
    strategy = ShapeStrategy.fixed if ShapeStrategy.fixed in workload.strategies else workload.strategies[0]
    return [client.encode(workload.collate([i], strategy)) for i in range(len(workload))]


def first_latency_ms(client: Client, bodies: list[bytes], count: int = 20) -> float:
    """Median latency of sequential requests: where the QPS search starts."""
    times = []
    for i in range(count):
        started = time.perf_counter()
        client.post(bodies[i % len(bodies)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))
