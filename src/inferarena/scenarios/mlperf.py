"""The four MLPerf scenarios. Compliant settings follow the MLPerf Inference rules (mlperf.conf):
600 s minimum; at least 1024 queries for SingleStream and 270,336 for MultiStream and Server; one
Offline query of at least 24,576 samples. `--quick` shortens all of them and says so.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from inferarena.config import ShapeStrategy
from inferarena.runtimes.base import submit_all
from inferarena.scenarios.base import COMPLIANT_MIN_DURATION_MS, LoadGenScenario, ScenarioContext
from inferarena.trackers.latency import LatencyStats


def _duration(settings: Any, ctx: ScenarioContext, quick_queries: int, compliant_queries: int) -> None:
    if ctx.quick:  # the rounds of a variant share the quick budget, so N rounds take about as long as one
        settings.min_duration_ms = max(100, ctx.settings.quick_duration_ms // ctx.rounds)
        settings.max_duration_ms = 4 * settings.min_duration_ms
        settings.min_query_count = -(-quick_queries // ctx.rounds)
    else:
        settings.min_duration_ms = COMPLIANT_MIN_DURATION_MS
        settings.min_query_count = compliant_queries


def _in_batches(ctx: ScenarioContext, queries: list, step: int, complete) -> None:
    for start in range(0, len(queries), step):
        chunk = queries[start : start + step]
        ctx.session.predict(ctx.workload.collate([q.index for q in chunk], ctx.strategy))
        complete(chunk)


def _in_flight(ctx: ScenarioContext, chunks: list[list], complete) -> None:
    """Every chunk as one batch, as many in flight as the session has requests (its streams); each chunk
    completes as soon as its batch is done, failed or not. Raises the first error."""
    batches = (ctx.workload.collate([q.index for q in chunk], ctx.strategy) for chunk in chunks)
    submit_all(ctx.session, batches, lambda i: complete(chunks[i]))


def by_length(ctx: ScenarioContext, queries: list) -> list:
    """Shortest first, so that a batch pads only to the longest of similar lengths (what length-aware
    servers do); `fixed` pads every sample to the maximum anyway, so its order stays as issued."""
    if ctx.strategy is ShapeStrategy.fixed:
        return list(queries)
    return sorted(queries, key=lambda q: ctx.workload.length(q.index))


def _ns(seconds: float) -> int:
    return max(1000, int(seconds * 1e9))


class SingleStream(LoadGenScenario):
    """One query of one sample at a time; the next is issued when the last completes. Metric: p90."""

    name = "single_stream"
    lg_scenario = "SingleStream"
    short = "SS"
    metric = "latency_ms_p90"
    ranking = "p90 latency, lowest first"
    ci_statistic = "p90"
    columns = (("latency_ms_p50", "p50 ms"), ("latency_ms_p90", "p90 ms"), ("latency_ms_p99", "p99 ms"))

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_queries=64, compliant_queries=1024)
        # Under-estimating makes LoadGen schedule more queries than needed rather than too few.
        settings.single_stream_expected_latency_ns = _ns(0.7 * ctx.estimates.latency_s_single)

    def issue(self, ctx, queries, complete):
        for q in queries:
            ctx.session.predict(ctx.cache[q.index])
            complete([q])

    def figures(self, log):
        latency = LatencyStats.from_loadgen(log)
        qps = log.get("result_qps_with_loadgen_overhead")  # one sample per query
        return {**(latency.as_dict() if latency else {}), "qps": qps, "throughput_sps": qps}


class MultiStream(LoadGenScenario):
    """Queries of N samples, served as one batch, issued back to back. Metric: per-query p99."""

    name = "multi_stream"
    lg_scenario = "MultiStream"
    short = "MS"
    metric = "latency_ms_p99"
    ranking = "p99 latency per query, lowest first"
    ci_statistic = "p99"
    columns = (("latency_ms_p50", "p50 ms"), ("latency_ms_p99", "p99 ms"), ("latency_ms_max", "max ms"))

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_queries=32, compliant_queries=270_336)
        settings.multi_stream_samples_per_query = ctx.settings.multi_stream_samples_per_query
        settings.multi_stream_expected_latency_ns = _ns(0.7 * ctx.estimates.latency_s_multi)

    def issue(self, ctx, queries, complete):
        _in_batches(ctx, queries, ctx.workload.batch_limit(len(queries)), complete)

    def figures(self, log):
        latency = LatencyStats.from_loadgen(log, per_query=True) or LatencyStats.from_loadgen(log)
        return latency.as_dict() if latency else {}


class Offline(LoadGenScenario):
    """All samples in one query, sorted by length (dynamic and bucketed shapes) and served in batches of
    `batch_size`, as many in flight as the session has streams. Metric: samples per second."""

    name = "offline"
    lg_scenario = "Offline"
    short = "Offline"
    metric = "throughput_sps"
    spread_metric = "throughput_sps"
    drift_check = False
    ranking = "samples/s, highest first"
    ci_statistic = "throughput"
    columns = (("throughput_sps", "samples/s"),)

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_queries=1, compliant_queries=1)
        expected = 1.3 * ctx.estimates.throughput_sps
        if not ctx.quick:  # at least 24,576 samples over the 600 s minimum
            expected = max(expected, 24_576 / (COMPLIANT_MIN_DURATION_MS / 1000))
        settings.offline_expected_qps = expected

    def issue(self, ctx, queries, complete):
        queries, step = by_length(ctx, queries), ctx.workload.batch_limit(ctx.batch_size)
        _in_flight(ctx, [queries[i : i + step] for i in range(0, len(queries), step)], complete)

    def figures(self, log):
        return {"throughput_sps": log.get("result_samples_per_second")}


class Server(LoadGenScenario):
    """Poisson arrivals at a target QPS with a p99 bound; a worker thread batches what has queued up,
    similar lengths together, and keeps as many batches in flight as the session has streams.

    Ranked like MLPerf: the QPS sustained within the latency bound; variants over the bound come last.
    """

    name = "server"
    lg_scenario = "Server"
    short = "Server"
    metric = "target_qps"
    ranking = "QPS within the p99 bound, highest first"
    columns = (("target_qps", "QPS"), ("latency_ms_p50", "p50 ms"), ("latency_ms_p99", "p99 ms"))

    @classmethod
    def rank_key(cls, metrics):
        return (0 if metrics.get("latency_bound_met") else 1, *super().rank_key(metrics))

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_queries=100, compliant_queries=270_336)
        self.target_qps = ctx.settings.server_target_qps or max(1.0, 0.5 * ctx.estimates.throughput_sps)
        settings.server_target_qps = self.target_qps
        self.latency_bound_ms = ctx.settings.server_latency_ms_p99
        settings.server_target_latency_ns = _ns(ctx.settings.server_latency_ms_p99 / 1000)

    def batch_limit(self, ctx) -> int:
        return ctx.workload.batch_limit(ctx.settings.server_max_batch)

    def serve_batch(self, ctx, batch: list, complete) -> None:
        """Answer what queued up; an error is kept (raised after the test) and the queries still complete."""
        def done(error):
            if error is not None:
                self.errors.append(error)
            complete(batch)

        try:
            ctx.session.submit(ctx.workload.collate([q.index for q in batch], ctx.strategy), done)
        except BaseException as exc:
            done(exc)

    def start(self, ctx, complete):
        self.queue: queue.Queue = queue.Queue()
        self.errors: list[BaseException] = []
        self.session = ctx.session
        limit = self.batch_limit(ctx)
        # With several streams, what has queued is sorted by length and cut into batches of similar lengths;
        # one stream serves the oldest queries first, one batch at a time.
        take = limit * getattr(ctx.session, "requests", 1)  # generative sessions serve one request at a time

        def serve():
            while (first := self.queue.get()) is not None:
                waiting = [first]
                while len(waiting) < take:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self.queue.put(None)
                        break
                    waiting.append(item)
                if len(waiting) > limit:
                    waiting = by_length(ctx, waiting)
                for i in range(0, len(waiting), limit):
                    self.serve_batch(ctx, waiting[i : i + limit], complete)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def issue(self, ctx, queries, complete):
        for q in queries:
            self.queue.put(q)

    def stop(self):
        self.queue.put(None)
        self.thread.join()
        if hasattr(self.session, "drain"):
            self.session.drain()
        if self.errors:
            raise self.errors[0]

    def figures(self, log):
        latency = LatencyStats.from_loadgen(log)
        return {
            **(latency.as_dict() if latency else {}),
            "target_qps": self.target_qps,
            "completed_qps": log.get("result_completed_samples_per_sec"),
            "throughput_sps": log.get("result_completed_samples_per_sec"),
            "latency_bound_met": float(bool(log.get("result_perf_constraints_met"))),
            "latency_bound_ms": self.latency_bound_ms,
        }
