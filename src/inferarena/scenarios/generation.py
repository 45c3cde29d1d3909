"""MLPerf-style scenarios for generative models, on LoadGen with token latencies.

LoadGen times each request and, with `use_token_latencies`, its first token (TTFT: the SUT calls
`FirstTokenComplete`) and time per output token (TPOT = (end − first token) / (tokens − 1), from the
token count each response carries). We add the inter-token latency (ITL) distribution from our own
per-token timestamps, since LoadGen keeps only per-request figures.

- `llm_single_stream`: one request at a time: TTFT, TPOT, ITL, end-to-end time and tokens/s.
- `llm_offline`: every request at once, served in batches (runtimes that batch do; others take turns).
- `llm_server`: Poisson arrivals at a target rate with TTFT and TPOT p99 bounds, as MLPerf's LLM rules
  set them; requests are served first come, first served by one worker (no continuous batching).

Under --quick each scenario runs a handful of requests: too few for LoadGen's early-stopping bound,
so results say INVALID with that reason; the figures are still real measurements.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from inferarena.scenarios.base import COMPLIANT_MIN_DURATION_MS, LoadGenScenario, ScenarioContext
from inferarena.scenarios.mlperf import Server
from inferarena.trackers.latency import LatencyStats

PERCENTILES = ("50.00", "90.00", "99.00")


def _duration(settings: Any, ctx: ScenarioContext, quick_requests: int, compliant_requests: int) -> None:
    if ctx.quick:  # a few requests per round; no duration cap, since one request can take seconds
        settings.min_duration_ms = max(100, ctx.settings.quick_duration_ms // ctx.rounds)
        settings.max_duration_ms = 600_000
        settings.min_query_count = max(2, -(-quick_requests // ctx.rounds))
    else:
        settings.min_duration_ms = COMPLIANT_MIN_DURATION_MS
        settings.min_query_count = compliant_requests


def _token_figures(log: dict) -> dict[str, float]:
    """TTFT and TPOT percentiles, and token throughput, from LoadGen's detail log."""
    def ms(key: str) -> float | None:
        value = log.get(key)
        return None if value is None else float(value) / 1e6

    figures: dict[str, Any] = {"ttft_ms_mean": ms("result_first_token_mean_latency_ns"),
                               "tpot_ms_mean": ms("result_time_to_output_token_mean")}
    for p in PERCENTILES:
        q = p.split(".")[0]
        figures[f"ttft_ms_p{q}"] = ms(f"result_first_token_{p}_percentile_latency_ns")
        figures[f"tpot_ms_p{q}"] = ms(f"result_time_per_output_token_{p}_percentile_ns")
    return figures


class _Generation(LoadGenScenario):
    kind = "generate"
    # Efficiency columns of its leaderboard: per generated token, not per request.
    efficiency = (("energy_j_per_token", "mJ/tok", 1000.0), ("cost_usd_per_1m_tokens", "$/1M tok", 1.0))

    def _serve(self, ctx: ScenarioContext, q, complete) -> None:
        """Generate one request, reporting its first token to LoadGen and stamping every token."""
        workload = ctx.workload
        stamps: list[int] = []

        def on_token(_token: int) -> None:
            stamps.append(time.perf_counter_ns())
            if len(stamps) == 1:
                self.first_token([q])

        out = ctx.session.generate(workload.prompt(q.index), workload.output_tokens(q.index), on_token)
        self.itl_ns.extend(np.diff(stamps).tolist())
        self.tokens += len(out)
        complete([q], tokens=[len(out)])

    def _itl(self) -> dict[str, float]:
        if not self.itl_ns:
            return {}
        itl = np.asarray(self.itl_ns, dtype=np.float64) / 1e6
        return {"itl_ms_p50": float(np.percentile(itl, 50)), "itl_ms_p90": float(np.percentile(itl, 90)),
                "itl_ms_p99": float(np.percentile(itl, 99)), "decode_tokens_per_s": 1000.0 / float(itl.mean())}

    def start(self, ctx, complete):
        self.itl_ns: list[int] = []
        self.tokens = 0


class LLMSingleStream(_Generation):
    """One request at a time. Ranked by end-to-end request time (p90); TTFT, TPOT and ITL beside it."""

    name = "llm_single_stream"
    lg_scenario = "SingleStream"
    metric = "latency_ms_p90"
    ranking = "request time p90, lowest first"
    columns = (("ttft_ms_p50", "TTFT p50 ms"), ("ttft_ms_p90", "TTFT p90 ms"), ("tpot_ms_p50", "TPOT p50 ms"),
               ("tpot_ms_p90", "TPOT p90 ms"), ("tokens_per_s", "tok/s"), ("decode_tokens_per_s", "decode tok/s"),
               ("pct_of_bandwidth", "%BW roofline"), ("peak_rss_mb", "peak RSS MB"))
    summary = tuple(("generation", key, key) for key in (
        "ttft_ms_p50", "ttft_ms_p90", "tpot_ms_p50", "tpot_ms_p90", "itl_ms_p50", "itl_ms_p99", "tokens_per_s",
        "decode_tokens_per_s", "pct_of_bandwidth"))

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_requests=16, compliant_requests=1024)
        settings.use_token_latencies = True
        settings.single_stream_expected_latency_ns = max(1000, int(0.7 * ctx.estimates.latency_s_single * 1e9))

    def issue(self, ctx, queries, complete):
        for q in queries:
            self._serve(ctx, q, complete)

    def figures(self, log):
        latency = LatencyStats.from_loadgen(log)
        return {**(latency.as_dict() if latency else {}), **_token_figures(log), **self._itl(),
                "tokens_per_s": log.get("result_completed_tokens_per_second"), "output_tokens": self.tokens,
                "throughput_sps": log.get("result_qps_with_loadgen_overhead")}


class LLMOffline(_Generation):
    """Every request in one query, generated in batches of `batch_size`. Ranked by output tokens/s."""

    name = "llm_offline"
    lg_scenario = "Offline"
    metric = "tokens_per_s"
    spread_metric = "tokens_per_s"
    drift_check = False
    ranking = "output tokens/s, highest first"
    columns = (("tokens_per_s", "tok/s"), ("throughput_sps", "requests/s"), ("batch", "batch"))
    summary = (("generation", "offline_tokens_per_s", "tokens_per_s"),)

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_requests=8, compliant_requests=24_576)
        settings.offline_expected_qps = max(0.01, 1.3 * ctx.estimates.throughput_sps)
        self.batch = min(ctx.batch_size, 8 if ctx.quick else ctx.batch_size)

    def issue(self, ctx, queries, complete):
        workload = ctx.workload
        queries = sorted(queries, key=lambda q: workload.length(q.index))  # similar lengths share a batch
        for start in range(0, len(queries), self.batch):
            chunk = queries[start : start + self.batch]
            wanted = max(workload.output_tokens(q.index) for q in chunk)
            outs = ctx.session.generate_batch([workload.prompt(q.index) for q in chunk], wanted)
            counts = [min(len(out), workload.output_tokens(q.index)) for q, out in zip(chunk, outs)]
            self.tokens += sum(counts)
            self.samples += len(chunk)
            complete(chunk, tokens=counts)

    def start(self, ctx, complete):
        super().start(ctx, complete)
        self.samples = 0

    def figures(self, log):
        samples_per_s = log.get("result_samples_per_second")
        # One query holds every request: tokens/s = LoadGen's samples/s × the tokens each one generated.
        per_sample = self.tokens / self.samples if self.samples else None
        return {"throughput_sps": samples_per_s, "batch": self.batch, "output_tokens": self.tokens,
                "tokens_per_s": samples_per_s * per_sample if samples_per_s and per_sample else None}


class LLMServer(_Generation, Server):
    """Poisson arrivals at a target request rate, with TTFT and TPOT p99 bounds. Ranked like MLPerf:
    the rate sustained within the bounds; variants over a bound come last."""

    name = "llm_server"
    lg_scenario = "Server"
    metric = "target_qps"
    ranking = "requests/s within the TTFT and TPOT bounds, highest first"
    columns = (("target_qps", "req/s"), ("ttft_ms_p99", "TTFT p99 ms"), ("tpot_ms_p99", "TPOT p99 ms"),
               ("latency_ms_p99", "request p99 ms"))
    summary = (("generation", "server_requests_per_s", "target_qps"),)

    def configure(self, settings, ctx):
        _duration(settings, ctx, quick_requests=12, compliant_requests=270_336)
        generation = ctx.generation
        self.target_qps = ctx.settings.server_target_qps or max(0.05, 0.5 * ctx.estimates.throughput_sps)
        settings.server_target_qps = self.target_qps
        settings.use_token_latencies = True
        self.ttft_bound_ms, self.tpot_bound_ms = generation.ttft_ms_p99, generation.tpot_ms_p99
        settings.ttft_latency = int(self.ttft_bound_ms * 1e6)
        settings.tpot_latency = int(self.tpot_bound_ms * 1e6)
        settings.server_target_latency_ns = int(60e9)  # the request bound is the TTFT/TPOT pair, not this

    def batch_limit(self, ctx) -> int:
        return 1  # one request at a time, first come first served (no continuous batching)

    def serve_batch(self, ctx, batch, complete):
        for q in batch:
            try:
                self._serve(ctx, q, complete)
            except BaseException as exc:  # noqa: BLE001 - re-raised after the test
                self.errors.append(exc)
                self.first_token([q])  # with token latencies on, LoadGen needs both for every response
                complete([q], tokens=[1])

    def start(self, ctx, complete):
        _Generation.start(self, ctx, complete)
        Server.start(self, ctx, complete)

    def figures(self, log):
        latency = LatencyStats.from_loadgen(log)
        return {**(latency.as_dict() if latency else {}), **_token_figures(log), **self._itl(),
                "target_qps": self.target_qps, "completed_qps": log.get("result_completed_samples_per_sec"),
                "tokens_per_s": log.get("result_completed_tokens_per_second"), "output_tokens": self.tokens,
                "latency_bound_met": float(bool(log.get("result_perf_constraints_met"))),
                "ttft_bound_ms": self.ttft_bound_ms, "tpot_bound_ms": self.tpot_bound_ms}
