"""Generative serving: an OpenAI-compatible completions endpoint, streamed (SSE), under LoadGen's
Server scenario with token latencies, and the peak request rate within the TTFT and TPOT bounds.

The endpoint is llama-cpp-python's own server (`python -m llama_cpp.server`), started here on
127.0.0.1 with the model's GGUF, or any running one (`--target URL --protocol openai`: vLLM, TGI, a
llama.cpp server). Each LoadGen query is one `POST /v1/completions` with `stream: true`, greedy
(temperature 0), `max_tokens` from the workload's output lengths, end-of-sequence suppressed with
`logit_bias` so each request generates them all (as in `run`); the first streamed chunk is
LoadGen's first token, and the count of chunks (one token each) is the response's token count, so
LoadGen's TPOT is per token actually received. Prompts are the workload's token ids, decoded back to
text: the OpenAI API takes text.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from inferarena.fsutil import private_dir
from inferarena.scenarios.base import Estimates, ScenarioContext
from inferarena.scenarios.generation import LLMServer
from inferarena.serving.clients import Client, RequestFailed
from inferarena.serving.load import PeakSearch, Probe, peak_qps, point
from inferarena.serving.process import ServerFailed, ServerProcess, free_port
from inferarena.serving.slo import RequestTiming, Slo


class OpenAIClient(Client):
    """`POST /v1/completions`, streamed, one connection per request."""

    protocol = "openai"
    key_variables = ("INFERARENA_API_KEY", "OPENAI_API_KEY")
    # Token id whose logit is pushed to -100 (OpenAI's `logit_bias`), so every request generates its full
    # max_tokens as the arena's runtimes do; None leaves end-of-sequence free.
    suppress: int | None = None

    def path(self) -> str:
        return f"{self.prefix}/v1/completions"

    def encode(self, inputs):  # the OpenAI API takes text, built per request in `stream`
        raise NotImplementedError("OpenAIClient sends text prompts: use stream()")

    def decode(self, body):
        return json.loads(body)

    def chat(self, fields: dict) -> dict:
        """One chat completion, not streamed (`POST …/v1/chat/completions`): the server's JSON answer, or
        RequestFailed. `fields` is the request body (model, messages, max_tokens, sampling)."""
        path = (self.prefix if self.prefix.endswith("/v1") else self.prefix + "/v1") + "/chat/completions"
        connection = self.connect()
        try:
            connection.request("POST", path, json.dumps(fields).encode(), self.headers())
            response = connection.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise RequestFailed(f"HTTP {response.status}: {data[:300].decode(errors='replace')}")
        try:
            return json.loads(data)
        except ValueError:
            raise RequestFailed(f"not JSON: {data[:120].decode(errors='replace')}") from None

    def stream(self, prompt: str, max_tokens: int, on_first: Callable[[], None] | None = None) -> int:
        """Send one streamed completion; calls `on_first` at the first token; returns the tokens received."""
        request = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
        if self.suppress is not None:
            request["logit_bias"] = {str(self.suppress): -100}
        body = json.dumps(request).encode()
        # A connection per request: SSE servers differ in how they end a stream (sse-starlette leaves the
        # connection unusable), and a connect on loopback costs far less than one token.
        connection = self.connect()
        try:
            connection.request("POST", self.path(), body, self.headers(Accept="text/event-stream"))
            response = connection.getresponse()
            if response.status != 200:
                raise RequestFailed(f"HTTP {response.status}: {response.read()[:300].decode(errors='replace')}")
            tokens = 0
            for raw in response:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                choice = (json.loads(data).get("choices") or [{}])[0]
                if choice.get("finish_reason") and not choice.get("text"):
                    continue  # the closing chunk carries no token
                tokens += 1
                if tokens == 1 and on_first is not None:
                    on_first()
            return tokens
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
            raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()


class ServedLLM(LLMServer):
    """The LLM Server scenario (TTFT/TPOT bounds, ranking, figures) with a SUT that streams each request
    from a live OpenAI-compatible endpoint."""

    def __init__(self, client: OpenAIClient, texts: list[str], target_qps: float, concurrency: int, duration_ms: int,
                 min_queries: int):
        self.client, self.texts = client, texts
        self.fixed_qps, self.concurrency = target_qps, concurrency
        self.duration_ms, self.min_queries = duration_ms, min_queries
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.requests: list[RequestTiming] = []  # every request: latency, TTFT and TPOT from LoadGen's issue

    def configure(self, settings, ctx):
        super().configure(settings, ctx)
        self.target_qps = settings.server_target_qps = self.fixed_qps
        settings.min_duration_ms = self.duration_ms
        settings.max_duration_ms = max(self.duration_ms * 4, 60_000)
        settings.min_query_count = self.min_queries

    def start(self, ctx, complete):
        self.itl_ns, self.tokens = [], 0
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="client")

    def issue(self, ctx, queries, complete):
        issued = time.perf_counter()
        for q in queries:
            self.pool.submit(self._one, ctx, q, complete, issued)

    def _one(self, ctx, q, complete, issued: float) -> None:
        tokens = 0
        first: list[float] = []

        def on_first() -> None:
            first.append(time.perf_counter())
            self.first_token([q])

        try:
            tokens = self.client.stream(self.texts[q.index], ctx.workload.output_tokens(q.index), on_first)
            done = time.perf_counter()
            ttft = (first[0] - issued) * 1000 if first else None
            tpot = (done - first[0]) * 1000 / (tokens - 1) if first and tokens > 1 else None
            with self.lock:
                self.tokens += tokens
            self.requests.append(RequestTiming((done - issued) * 1000, ttft, tpot))
        except RequestFailed as exc:
            with self.lock:
                self.failures.append(str(exc))
            self.requests.append(RequestTiming(None))
        finally:
            if tokens == 0:  # failed or empty: LoadGen still needs a first token and a count for the response
                self.first_token([q])
            complete([q], tokens=[max(tokens, 1)])

    def stop(self):
        self.pool.shutdown(wait=True)

    def figures(self, log):
        figures = {**super().figures(log), "errors": float(len(self.failures))}
        count = log.get("result_query_count")
        if count:
            figures["tokens_per_request"] = self.tokens / count
        return figures


@dataclass
class LLMEndpoint:
    name: str
    client: OpenAIClient
    texts: list[str]


def run_at(endpoint: LLMEndpoint, workload, generation, target_qps: float, concurrency: int, duration_ms: int,
           rounds: int = 1) -> Probe:
    """One LoadGen Server test at `target_qps` requests/s; ok when TTFT and TPOT p99 meet their bounds and
    no request failed."""
    from inferarena.config import LoadGenConfig

    scenario = ServedLLM(endpoint.client, endpoint.texts, target_qps, concurrency, duration_ms,
                         min_queries=max(8, int(target_qps * duration_ms / 1000)))
    ctx = ScenarioContext(session=None, workload=workload, strategy=workload.strategies[0], batch_size=1, quick=True,
                          settings=LoadGenConfig(), estimates=Estimates(0.0, 0.0, target_qps), generation=generation,
                          rounds=rounds)
    result = scenario.run(ctx)
    metrics = dict(result.metrics)
    if metrics.get("cpu_util_pct") is not None and metrics.get("completed_qps"):
        metrics["client_cpu_ms_per_query"] = 10 * metrics["cpu_util_pct"] / metrics["completed_qps"]
    ok = bool(metrics.get("latency_bound_met")) and not scenario.failures
    slo = Slo(ttft_ms=generation.ttft_ms_p99, tpot_ms=generation.tpot_ms_p99)
    completed = metrics.get("completed_qps")
    seconds = len(scenario.requests) / completed if completed else 0.0
    measured = point("rate", target_qps, list(scenario.requests), seconds, slo, meets=ok,
                     ttft_ms_p99=metrics.get("ttft_ms_p99"), tpot_ms_p99=metrics.get("tpot_ms_p99"))
    metrics.update(slo_attainment_pct=measured.slo_attainment_pct, goodput_qps=measured.goodput_qps)
    return Probe(target_qps, ok, metrics, scenario.failures[0] if scenario.failures else None, point=measured)


def first_request_s(endpoint: LLMEndpoint, workload, count: int = 3) -> float:
    """Median time of sequential requests (after one warm-up): where the rate search starts."""
    times = []
    for i in range(count + 1):
        started = time.perf_counter()
        endpoint.client.stream(endpoint.texts[i % len(endpoint.texts)], workload.output_tokens(i % len(workload)))
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def search(endpoint: LLMEndpoint, workload, generation, concurrency: int, duration_ms: int, max_probes: int,
           process: ServerProcess | None = None, observe: Callable | None = None) -> tuple[PeakSearch, float]:
    """The peak request rate (double, then bisect); a server we started that dies stops the search with its log.
    `observe` wraps the probe function (serve-bench adds batch and energy readings)."""
    def probe(qps: float) -> Probe:
        result = run_at(endpoint, workload, generation, qps, concurrency, duration_ms)
        if process is not None and not process.alive():
            raise ServerFailed(f"{process.name} died during the load: {process.tail()}", f"see {process.log}")
        return result

    single = first_request_s(endpoint, workload)
    return peak_qps(observe(probe) if observe else probe, start_qps=0.5 / single, max_probes=max_probes,
                    min_qps=0.02), single


def prompt_texts(workload) -> list[str]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(workload.tokenizer_path)
    return [tokenizer.decode(p) for p in workload.prompts]


def llama_cpp_server(gguf: Path, threads: int, context: int, work_dir: Path) -> tuple[ServerProcess, str]:
    """llama-cpp-python's OpenAI-compatible server for this GGUF on a free loopback port, started and ready."""
    port = free_port()
    private_dir(work_dir)
    # llama-cpp-python's server, started through inferarena's wrapper: extra buffers off where the build has AMX.
    command = [sys.executable, "-m", "inferarena.frameworks.llama_cpp", "--extra_buffers", "auto", "--model", str(gguf), "--host", "127.0.0.1", "--port",
               str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(context),
               "--model_alias", "model", "--interrupt_requests", "False"]  # by default a new request cuts the stream
    # being served short: requests would end early, and the rate would look higher than it is
    process = ServerProcess("llama_cpp_server", command, work_dir / "llama_cpp_server.log", work_dir).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_ready([f"{url}/v1/models"], timeout_s=120)
    return process, url
