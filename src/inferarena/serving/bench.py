"""`inferarena serve-bench`: one model variant on each installed server, for each batching config,
loaded by LoadGen's Server scenario until the peak QPS within the SLO is found, then along the curves a
user asks for: Poisson rates (`--rates`, `--rate-sweep`) and closed-loop concurrency (`--concurrency`).
Every point has its SLO attainment and goodput (`slo.py`); the highest rate that met the SLO gets its
cost per million requests and its energy per request.

For each (server, batching): stage the ONNX model in a fresh folder, start the server in its managed
environment on free loopback ports, wait for readiness, check one answer against local ONNX Runtime,
search the peak QPS, measure the asked-for points, read the batch sizes the server formed during each
probe, and stop the server (its whole process group). A server that fails to start or dies is recorded
with its log tail and the sweep goes on. Results go to the same store as `run` (one variant per server
config, scenario `server`, its load points in the variant's session info) and to the `--json` document's
`servers[]`, one `ServerEntry` each with every point.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from inferarena import registry
from inferarena.config import CostConfig, GenerationConfig, WorkloadConfig
from inferarena.errors import ConfigError, InferarenaError
from inferarena.events import EventSink, ignore
from inferarena.fsutil import private_dir
from inferarena.serving import load
from inferarena.serving.clients import GRPC_PROTOCOLS, RequestFailed, client
from inferarena.serving.process import ServerFailed, ServerProcess, free_port
from inferarena.serving.records import AtSlo, LoadPoint, ServeBenchResult, ServedInfo, ServerEntry
from inferarena.serving.servers import Batching, ModelServer, stage_model
from inferarena.serving.slo import Slo


class ServeBenchConfig(BaseModel):
    """Everything that decides a serve-bench's numbers; stored with its results."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("minilm", description="Bundled model name, HF folder, or .onnx file.")
    pipeline: str | None = Field(None, description="A --pipelines preset whose ONNX output is served instead.")
    servers: list[str] | None = Field(None, description="Servers to measure; default: every one that serves the "
                                      "model (Triton, TorchServe, MLServer; llama.cpp's server for a GGUF).")
    batching: list[Batching] = Field(
        default_factory=lambda: [Batching(max_batch_size=1), Batching(max_batch_size=8, max_delay_ms=2.0)],
        description="Batching configs swept on every server (instances only where the server has them).")
    slo: Slo = Field(default_factory=lambda: Slo(latency_ms=100.0), description="Per-request bounds and the share "
                     "of requests that must meet them: the peak QPS is the highest rate that does (tensor models; "
                     "generative ones use generation's TTFT and TPOT bounds).")
    client_threads: int = Field(32, ge=1, description="Client threads of the Poisson load (each with its own "
                                "connection).")
    rates: list[float] = Field(default_factory=list, description="Poisson rates (requests/s) measured after the "
                               "peak search, each a point of the curve.")
    rate_sweep: bool = Field(False, description="Also measure 25, 50, 75 and 125 % of each configuration's peak.")
    concurrency: list[int] = Field(default_factory=list, description="Closed-loop points: requests kept in flight "
                                   "(each client sends its next request when the last answers).")
    probe_ms: int = Field(3000, ge=200, description="Duration of each LoadGen Server probe.")
    max_probes: int = Field(8, ge=1, description="Probes per config in the peak-QPS search.")
    quick: bool = Field(False, description="--quick: shorter and fewer probes (the caller sets probe_ms and "
                        "max_probes); said in the notes.")
    threads: int | None = Field(None, ge=1, description="Intra-op threads of the served model; default: all cores.")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where the served ONNX model computes: cpu, or cuda (ONNX Runtime's CUDA execution "
        "provider inside each server's environment; never run on a GPU yet), or auto (cuda where a GPU is visible).")
    target: str | None = Field(None, description="Remote mode: an already running endpoint (http://host:port).")
    protocol: Literal["kserve-v2", "kserve-v2-grpc", "torchserve", "tfserving-rest", "openai"] = Field(
        "kserve-v2", description="Remote protocol (kserve-v2-grpc: host:port of a KServe v2 gRPC endpoint; openai: "
        "streamed /v1/completions, for generative models).")
    transports: list[Literal["http", "grpc"]] = Field(
        default_factory=lambda: ["http"], description="How the load reaches each started server: its REST API, "
        "its gRPC API (Triton and MLServer: KServe v2 gRPC), or both, each measured on its own.")
    target_model: str | None = Field(None, description="Remote mode: the model's name on that endpoint.")

    @property
    def sla_p99_ms(self) -> float | None:
        return self.slo.latency_ms

    @field_validator("rates")
    @classmethod
    def _positive_rates(cls, rates: list[float]) -> list[float]:
        if any(not r > 0 for r in rates):
            raise ValueError("every rate must be a positive number of requests per second")
        return sorted(set(rates))

    @field_validator("concurrency")
    @classmethod
    def _positive_concurrency(cls, levels: list[int]) -> list[int]:
        if any(c < 1 or c > 1024 for c in levels):
            raise ValueError("every concurrency must be between 1 and 1024 requests in flight")
        return sorted(set(levels))

    @field_validator("target")
    @classmethod
    def _no_secret_in_target(cls, url: str | None) -> str | None:
        """The target is stored with the run and printed in reports: a secret in it would be too."""
        from urllib.parse import parse_qs, urlsplit

        if url is None:
            return url
        parts = urlsplit(url if "://" in url else f"http://{url}")
        secret = {"key", "api_key", "apikey", "token", "access_token", "password"} & {k.lower() for k in parse_qs(parts.query)}
        if parts.username or parts.password or secret:
            raise ValueError("has credentials in it; put the API key in the INFERARENA_API_KEY environment variable "
                             "(sent as a Bearer token, never stored) and give the URL without it")
        return url
    multi_model: str | None = Field(
        None, description="Serve a second model on the same server, this --pipelines preset's ONNX variant of the "
        "first, under a mixed load (requests alternate), and report each model's p99.")
    workload: WorkloadConfig = Field(default_factory=lambda: WorkloadConfig(num_samples=256))
    cost: CostConfig = Field(default_factory=CostConfig, description="The price behind $/1M requests at the SLO.")
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig, description="Generative models: prompt/output lengths and the TTFT and "
        "TPOT p99 bounds that decide the peak request rate.")


def serve_bench(config: ServeBenchConfig, cache_dir: Path, work_dir: Path,
                emit: EventSink | None = None) -> ServeBenchResult:
    """Run the whole benchmark: every server configuration's entry, with its points.

    How a model is served is its kind's `serving` route: tensors over KServe v2 (and the other
    servers' own APIs), or token streams over the OpenAI API."""
    from inferarena import kinds, models, workloads
    from inferarena.hardware import resolve_device

    emit = emit or ignore
    device = resolve_device(config.device)  # a cuda bench without a GPU stops here, in one line
    config = config.model_copy(update={"device": device})
    artifact = models.resolve(config.model)
    workload = workloads.build(artifact, config.workload, config.generation)
    kind = kinds.of_artifact(artifact)
    private_dir(cache_dir)
    private_dir(work_dir)
    if device != "cpu" and kind.serving != "kserve-v2" and not config.target:
        raise ConfigError(f"serve-bench --device {device} serves ONNX models on the tensor servers only; "
                          f"{config.model} is served by llama.cpp here, on the CPU",
                          "use --device cpu, or benchmark a running GPU endpoint with --target URL --protocol openai")
    result = ROUTES[kind.serving](config, artifact, workload, cache_dir, work_dir, emit)
    result.kind, result.device = kind.name, device
    costs = _costs(config, result)
    if costs:
        result.notes.append(costs)
    if config.quick:
        result.notes.insert(0, f"quick: {config.probe_ms} ms probes, at most {config.max_probes} per configuration, "
                            "so the peak QPS is coarse (drop --quick for 3000 ms probes, up to 8)")
    return result


def _tensor_servers(config: ServeBenchConfig, artifact, workload, cache_dir: Path, work_dir: Path,
                    emit: EventSink) -> ServeBenchResult:
    """Models that answer batches: the ONNX export on each registered server, over KServe v2 or their own API."""
    notes: list[str] = list(getattr(workload, "notes", []))
    entries: list[ServerEntry] = []
    if config.target:
        entries.append(_remote(config, workload, emit))
    else:
        onnx, reference = _onnx(config, config.pipeline, artifact, workload, cache_dir, work_dir, emit)
        models = [("model", onnx, reference)]
        if config.multi_model:
            second, second_reference = _onnx(config, config.multi_model, artifact, workload, cache_dir, work_dir, emit)
            models.append((_safe(config.multi_model), second, second_reference))
        for name in config.servers or list(registry.SERVERS):
            if name not in registry.SERVERS:
                raise ConfigError(f"unknown server {name!r}", f"choose from {', '.join(registry.SERVERS)}")
            server: ModelServer = registry.load(registry.SERVERS, name)()
            python = _environment(server, emit)
            transports = [t for t in config.transports if t == "http" or server.grpc_protocol]
            if len(transports) < len(config.transports):
                notes.append(f"{name}: no gRPC load here (it has no KServe v2 gRPC API): " + (
                    "measured over HTTP only" if transports else "skipped; pass --transport http to measure it"))
            for batching, transport in itertools.product(config.batching, transports):
                if batching.instances > 1 and not server.has_instances:
                    if transport == transports[0]:
                        notes.append(f"{name}: skipped {batching.key()}: it has no instance count")
                    continue
                if isinstance(python, InferarenaError):
                    entries.append(_entry(name, batching, "failed", error=python.problem, transport=transport))
                    continue
                entries.append(_bench_server(server, python, batching, config, models, workload, work_dir, emit,
                                             transport))
    if config.concurrency:
        notes.append("closed loop: each of N clients sends its next request when the last one answers (timed here; "
                     "LoadGen has no closed-loop scenario); a point meets the SLO when its attainment does")
    return ServeBenchResult(config.model, "", "", entries, notes, workload.describe(), config.slo.describe(),
                            efficiency(entries), sla_p99_ms=config.slo.latency_ms)


def best_per_server(entries: list[ServerEntry]) -> dict[str, ServerEntry]:
    """Each server's highest peak QPS, preferring peaks that held when probed again."""
    best: dict[str, ServerEntry] = {}
    for e in entries:
        if not e.ok or not e.peak_qps_at_slo:
            continue
        rank = (e.peak_confirmed is not False, e.peak_qps_at_slo)
        held = best.get(e.server)
        if held is None or rank > (held.peak_confirmed is not False, held.peak_qps_at_slo):
            best[e.server] = e
    return best


def efficiency_key(entry: ServerEntry) -> str:
    """Batching is compared within one transport: "triton", "triton gRPC"."""
    return entry.server + (" gRPC" if entry.transport == "grpc" else "")


def efficiency(entries: list[ServerEntry]) -> dict[str, float | None]:
    """Per server and transport: peak QPS of its best batched config over its peak without batching."""
    out: dict[str, float | None] = {}
    for name in dict.fromkeys(efficiency_key(e) for e in entries):
        # A peak that failed its repetition is not a figure to divide by, nor to divide.
        mine = [e for e in entries if efficiency_key(e) == name and e.ok and e.peak_confirmed is not False]
        plain = [e.peak_qps_at_slo for e in mine if e.config.get("max_batch_size") == 1 and e.peak_qps_at_slo]
        batched = [e.peak_qps_at_slo for e in mine if e.config.get("max_batch_size", 1) > 1 and e.peak_qps_at_slo]
        out[name] = round(max(batched) / max(plain), 3) if plain and batched else None
    return out


def _entry(server: str, batching: Batching | None, status: str, **fields: Any) -> ServerEntry:
    fields.setdefault("label", batching.label() if batching else "remote endpoint")
    return ServerEntry(server=server, config=batching.model_dump() if batching else {}, status=status, **fields)


def _environment(server: ModelServer, emit: EventSink):
    from inferarena import envs

    label = f"{server.name}: environment" + ("" if envs.ready(server.environment) else " (first use: minutes)")
    emit("start", {"name": label})
    try:
        python = envs.ensure(server.environment)
    except InferarenaError as exc:
        emit("done", {"name": label, "ok": False, "error": exc.problem})
        return exc
    emit("done", {"name": label, "ok": True, "error": None})
    return python


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _onnx(config: ServeBenchConfig, pipeline: str | None, artifact, workload, cache_dir: Path, work_dir: Path,
          emit: EventSink):
    """The ONNX file to serve (the source exported, or the pipeline's output), and local ORT outputs
    on the first samples, to check that each server answers the same."""
    from inferarena import passes
    from inferarena.passes.base import PassContext

    label = f"build the served model{f' ({pipeline})' if pipeline else ''}"
    emit("start", {"name": label})
    if pipeline:  # data-driven passes need the reference and calibration: the optimize path has them
        from inferarena import arena
        from inferarena.config import RunConfig
        from inferarena.passes.presets import preset

        run_config = RunConfig(model=config.model, workload=config.workload, quick=True, threads=config.threads)
        built = arena.optimize(run_config, preset(pipeline), arena.Paths(cache_dir, work_dir)).artifact
        if built.format != "onnx":
            raise ConfigError(f"pipeline {pipeline} makes a {built.format} model, and the servers serve ONNX",
                              "pick a pipeline whose output is ONNX (ort-*, int8-*)")
    else:
        steps = tuple((name, "{}") for name in passes.route(artifact.format, ("onnx",)))
        context = PassContext(workload, None, [], config.threads or 1, fingerprint=config.workload.model_dump_json())
        built, _ = passes.apply(steps, artifact, cache_dir, context)
    emit("done", {"name": label, "ok": True, "error": None})
    import onnxruntime as ort

    session = ort.InferenceSession(str(built.path), providers=["CPUExecutionProvider"])
    batch = workload.collate([0], workload.strategies[0])
    reference = session.run(None, batch)[0]
    return built, (batch, reference)


class _ServerEnergy:
    """A probe's energy: RAPL package counters where this host exposes them (the whole package, so the load
    generator is included; idle subtracted), else an estimate: the server's process group CPU time over the
    probe x the CPU's watts per hardware thread (the same basis as `run`'s estimate)."""

    def __init__(self, process: ServerProcess | None):
        from inferarena.hardware import host
        from inferarena.trackers.energy import EnergyMeter

        self.process = process
        self.source = None  # a remote endpoint: its energy is its host's, not metered here
        if process is not None:
            self.meter = EnergyMeter(host(), idle_s=1.0)
            self.source = "rapl" if self.meter.source == "rapl" else "estimate"

    @property
    def basis(self) -> str | None:
        if self.source == "rapl":
            return f"measured: RAPL package counters, the load generator included, idle {self.meter.idle_w:.1f} W " \
                   "subtracted"
        if self.source == "estimate":
            return f"estimate: the server's CPU time x {self.meter.w_per_thread:.2f} W per thread; {self.meter.how}"
        return None

    def begin(self) -> None:
        self.t0 = time.perf_counter()
        if self.source == "rapl":
            self.start = self.meter.reader.read()
        elif self.source == "estimate":
            self.cpu0 = self.process.cpu_seconds()

    def joules(self) -> float | None:
        if self.source == "rapl":
            seconds = time.perf_counter() - self.t0
            return max(0.0, self.meter.reader.joules(self.start, self.meter.reader.read()) - self.meter.idle_w * seconds)
        if self.source == "estimate":
            return max(0.0, self.process.cpu_seconds() - self.cpu0) * self.meter.w_per_thread
        return None


def _bench_server(server: ModelServer, python: Path, batching: Batching, config: ServeBenchConfig, models: list,
                  workload, work_dir: Path, emit: EventSink, transport: str = "http") -> ServerEntry:
    name = f"{server.name} {batching.key()}" + (f" + {models[1][0]}" if len(models) > 1 else "") + (
        " over gRPC" if transport == "grpc" else "")
    folder = (work_dir / "serve" / server.name / f"{batching.key()}-{transport}").resolve()  # servers run with their own cwd
    shutil.rmtree(folder, ignore_errors=True)
    private_dir(folder)
    served = [stage_model(model_name, onnx.path, {k: v.dtype.name for k, v in reference[0].items()},
                          config.threads or 0, folder / "models", config.device)
              for model_name, onnx, reference in models]
    ports = {p: free_port() for p in server.port_names}
    command, env = server.command(served, batching, folder, python, ports)
    process = ServerProcess(server.name, command, folder / "server.log", folder, env, server.stop_leader_first)
    emit("start", {"name": name})
    targets: list[load.Target] = []
    try:
        with process:
            ready_s = process.wait_ready(server.ready_urls(ports, served), server.startup_timeout_s,
                                         server.ready_check(ports, served, folder))
            for (model_name, _, (batch, expected)), staged in zip(models, served, strict=True):
                c = client(server.grpc_protocol, server.grpc_address(ports), staged.name) if transport == "grpc" \
                    else client(server.protocol, server.base_url(ports), staged.name)
                targets.append(load.Target(model_name, c, []))
                got = np.asarray(next(iter(c.infer(batch).values())), dtype=np.float64)
                if got.size != expected.size or not np.allclose(got.reshape(expected.shape), expected, atol=1e-3):
                    diff = np.abs(got.reshape(expected.shape) - expected).max() if got.size == expected.size else "shape"
                    raise ServerFailed(f"{server.name} answered {model_name} differently from local ONNX Runtime "
                                       f"(max diff {diff})", "check the server's glue")
                targets[-1].bodies = load.encode_bodies(c, workload)
            first_ms = load.first_latency_ms(targets[0].client, targets[0].bodies)
            observe = _observer([s.folder for s in served], process, lambda: server.batch_counters(ports))
            search = load.peak_qps(observe(lambda qps: load.run_at(targets, workload, qps, config.slo,
                                                                   config.client_threads, config.probe_ms)),
                                   start_qps=max(1.0, 0.5 * 1000 / first_ms), max_probes=config.max_probes)
            extra = _curve_points(config, search, targets, workload, observe, emit, name)
    except (ServerFailed, RequestFailed, InferarenaError) as exc:
        message = exc.problem if isinstance(exc, InferarenaError) else str(exc)
        emit("done", {"name": name, "ok": False, "error": message})
        return _entry(server.name, batching, "failed", error=message[:600], log=str(process.log), transport=transport)
    finally:
        for target in targets:
            target.client.close()
        server.cleanup(folder)
    emit("done", {"name": name, "ok": True, "error": None})
    best = search.best.metrics if search.best else {}
    per_model = {m: {k: best.get(f"{m}.{k}") for k in ("latency_ms_p50", "latency_ms_p99", "queries")}
                 for m, _, _ in models} if len(models) > 1 else None
    return _entry(server.name, batching, "ok" if search.best else "no QPS met the SLO", transport=transport,
                  **_peak_fields(search, best), server_reported_avg_batch_size=best.get("server_reported_avg_batch_size"),
                  ready_s=round(ready_s, 2), single_request_ms=round(first_ms, 3), models=per_model,
                  points=_points(search) + extra)


def _peak_fields(search: load.PeakSearch, best: dict) -> dict[str, Any]:
    """The entry's figures at its peak rate."""
    return {"peak_qps_at_slo": search.peak_qps, "latency_ms_p99": best.get("latency_ms_p99"),
            "latency_ms_p50": best.get("latency_ms_p50"), "latency_ms_p90": best.get("latency_ms_p90"),
            "completed_qps": best.get("completed_qps"), "avg_batch_size": best.get("avg_batch_size"),
            "client_cpu_ms_per_query": best.get("client_cpu_ms_per_query"), "errors": best.get("errors"),
            "slo_attainment_pct": best.get("slo_attainment_pct"), "goodput_qps": best.get("goodput_qps"),
            **_confirmation(search), "best": best}


def _curve_points(config: ServeBenchConfig, search: load.PeakSearch, targets, workload, observe, emit: EventSink,
                  name: str) -> list[LoadPoint]:
    """The points asked for beyond the peak search: fixed rates, fractions of the peak, closed-loop levels."""
    rates = list(config.rates)
    if config.rate_sweep and search.peak_qps:
        rates += [round(search.peak_qps * f, 3) for f in (0.25, 0.5, 0.75, 1.25)]
    points = []
    for rate in sorted(set(rates)):
        emit("start", {"name": f"{name}: {rate:g} req/s"})
        points.append(observe(lambda qps: load.run_at(targets, workload, qps, config.slo, config.client_threads,
                                                      config.probe_ms))(rate).point)
        emit("done", {"name": f"{name}: {rate:g} req/s", "ok": True, "error": None})
    for level in config.concurrency:
        emit("start", {"name": f"{name}: {level} in flight"})
        points.append(observe(lambda n: load.closed_loop(targets, int(n), config.probe_ms, config.slo))(level).point)
        emit("done", {"name": f"{name}: {level} in flight", "ok": True, "error": None})
    return points


def _observer(folders: list[Path], process: ServerProcess | None,
              counters: Callable[[], tuple[float, float] | None] = lambda: None):
    """Wraps a probe function so that each probe also reads the batch sizes the server formed (from our model
    code's log, and from the server's own statistics where it keeps them) and the energy it took, and stops
    when the server died."""
    from inferarena.serving.backend import read_batches

    energy = _ServerEnergy(process)

    def observe(run: Callable[[float], load.Probe]) -> Callable[[float], load.Probe]:
        def probe(offered: float) -> load.Probe:
            before = [len(read_batches(f)) for f in folders]
            counted = counters()
            energy.begin()
            result = run(offered)
            joules = energy.joules()
            sizes = [size for f, start in zip(folders, before, strict=True) for size in read_batches(f)[start:]]
            if sizes:
                result.metrics["avg_batch_size"] = round(float(np.mean(sizes)), 3)
                result.metrics["server_batches"] = float(len(sizes))
            after = counters()
            if counted and after and after[1] > counted[1]:
                result.metrics["server_reported_avg_batch_size"] = round((after[0] - counted[0]) / (after[1] - counted[1]), 3)
            if result.point is not None:
                result.point.avg_batch_size = result.metrics.get("avg_batch_size")
                answered = result.point.requests - result.point.errors
                if joules is not None and answered:
                    result.point.energy_j_per_request = joules / answered
                    result.point.energy_source = energy.source
                    result.metrics["energy_j_per_query"] = result.point.energy_j_per_request
                result.metrics["energy_basis"] = energy.basis
            if process is not None and not process.alive():
                raise ServerFailed(f"{process.name} died during the load: {process.tail()}", f"see {process.log}")
            return result

        return probe

    return observe


def _costs(config: ServeBenchConfig, result: ServeBenchResult) -> str | None:
    """Each started server's cost per million requests and energy per request at its peak rate within the SLO
    (the highest that passed and held on repetition); the note says where the price came from. A remote
    endpoint gets none: its host and price are not this one's."""
    from inferarena.hardware import host
    from inferarena.trackers import cost

    try:
        price = cost.price(host(), config.cost.instance, config.cost.usd_per_hour, result.device)
    except InferarenaError as exc:
        price, missing = None, exc.problem
    for entry in result.servers:
        if entry.target or not entry.peak_qps_at_slo:
            continue
        at_peak = [p for p in entry.points if p.mode == "rate" and p.offered == entry.peak_qps_at_slo and not p.repeat]
        if not at_peak or not at_peak[0].goodput_qps:
            continue
        top = at_peak[0]
        energy = top.energy_j_per_request
        entry.at_slo = AtSlo(top.offered, top.goodput_qps,
                             price.usd_per_hour / 3600 / top.goodput_qps * 1e6 if price else None,
                             price.label if price else None,
                             config.cost.usd_per_hour is None and config.cost.instance is None, energy,
                             entry.best.get("energy_basis") if energy is not None else None)
    if not any(e.at_slo for e in result.servers):
        return None
    if price is None:
        return f"no $/1M requests: {missing}"
    return (f"$/1M requests at the SLO: the host's price over the goodput at the peak rate; price {price.label}. "
            "The price is the whole host's, as if it served nothing else.")


def _points(search: load.PeakSearch) -> list[LoadPoint]:
    """The peak search's probes as points of the rate curve (repetitions flagged)."""
    points = []
    for probe in search.probes:
        if probe.point is not None:
            probe.point.repeat = probe.repeat
            points.append(probe.point)
    return points


GENERATIVE_SERVERS = ("llama_cpp_server",)


def _generative(config: ServeBenchConfig, artifact, workload, cache_dir: Path, work_dir: Path,
                emit: EventSink) -> ServeBenchResult:
    """A generative model: llama.cpp's OpenAI-compatible server (or a remote OpenAI endpoint), streamed, with
    the peak request rate whose TTFT and TPOT p99 meet the bounds."""
    from inferarena.hardware import host
    from inferarena.serving import openai

    g = config.generation
    notes = list(workload.notes) + [
        f"generative model: requests/s within TTFT p99 <= {g.ttft_ms_p99:g} ms and TPOT p99 <= {g.tpot_ms_p99:g} ms "
        "(streamed OpenAI completions, greedy); the server runs one request at a time, so no batching is swept"]
    if config.concurrency:
        notes.append("--concurrency: closed-loop points are measured on tensor servers only; a generative model "
                     "gets its Poisson rates (--rates, --rate-sweep)")
    texts = openai.prompt_texts(workload)
    entries: list[ServerEntry] = []
    if config.target:
        if config.protocol != "openai":
            raise ConfigError(f"a generative model is served over the OpenAI API, not {config.protocol}",
                              "pass --protocol openai")
        targets = [("remote", config.target)]
    else:
        if artifact.format != "gguf":
            raise ConfigError(f"llama.cpp's server takes a GGUF file, and {config.model} is {artifact.format}",
                              "serve a .gguf, or benchmark a running endpoint with --target URL --protocol openai")
        chosen = config.servers or list(GENERATIVE_SERVERS)
        unknown = [s for s in chosen if s not in GENERATIVE_SERVERS and s not in registry.SERVERS]
        if unknown:
            raise ConfigError(f"unknown server {unknown[0]!r}", f"choose from {', '.join(GENERATIVE_SERVERS)}")
        targets = [("llama_cpp_server", None)]  # None: start it here
        if any(s in registry.SERVERS for s in chosen):
            notes.append("Triton, TorchServe and MLServer serve tensors here, not token streams: skipped for a "
                         "generative model")
    threads = config.threads or host().logical_cores
    for server, url in targets:
        label = f"threads {threads}, n_ctx {g.context}" if url is None else url
        emit("start", {"name": f"{server}: {label}"})
        process = None
        try:
            if url is None:
                process, url = openai.llama_cpp_server(artifact.path, threads, g.context, work_dir / "serve")
            client_ = openai.OpenAIClient(url, config.target_model or "model", timeout_s=120)
            client_.suppress = artifact.meta.get("eos_token_id")
            endpoint = openai.LLMEndpoint(server, client_, texts)
            observe = _observer([], process)
            found, single = openai.search(endpoint, workload, g, config.client_threads, config.probe_ms,
                                          config.max_probes, process, observe)
            rates = list(config.rates) + ([round(found.peak_qps * f, 3) for f in (0.25, 0.5, 0.75, 1.25)]
                                          if config.rate_sweep and found.peak_qps else [])
            extra = [observe(lambda q: openai.run_at(endpoint, workload, g, q, config.client_threads,
                                                     config.probe_ms))(rate).point for rate in sorted(set(rates))]
            status = "ok" if found.best else "no request rate met the TTFT/TPOT bounds"
            best = found.best.metrics if found.best else {}
            entries.append(ServerEntry(
                server=server, config={"threads": threads, "n_ctx": g.context}, label=label, status=status,
                protocol="openai", **_peak_fields(found, best), ttft_ms_p99=best.get("ttft_ms_p99"),
                tpot_ms_p99=best.get("tpot_ms_p99"), tokens_per_s=best.get("tokens_per_s"),
                tokens_per_request=best.get("tokens_per_request"), single_request_ms=round(single * 1000, 1),
                points=_points(found) + extra))
            emit("done", {"name": f"{server}: {label}", "ok": True, "error": None})
        except (InferarenaError, RequestFailed) as exc:
            error = exc.problem if isinstance(exc, InferarenaError) else str(exc)
            if process is not None and "died during the load" not in error:
                error += f" (server log: {process.tail()})"
            entries.append(_entry(server, None, "failed", error=error[:600], label=label))
            emit("done", {"name": f"{server}: {label}", "ok": False, "error": error})
        finally:
            if process is not None:
                process.stop()
    slo = Slo(ttft_ms=g.ttft_ms_p99, tpot_ms=g.tpot_ms_p99)
    return ServeBenchResult(config.model, "", "", entries, notes, workload.describe(), slo.describe(),
                            ttft_ms_p99=g.ttft_ms_p99, tpot_ms_p99=g.tpot_ms_p99, generative=True)


def _remote(config: ServeBenchConfig, workload, emit: EventSink) -> ServerEntry:
    if not config.target_model:
        raise ConfigError("remote mode needs the model's name on the endpoint", "pass --target-model NAME")
    name = f"remote {config.target}"
    transport = "grpc" if config.protocol in GRPC_PROTOCOLS else "http"
    emit("start", {"name": name})
    c = client(config.protocol, config.target, config.target_model)
    try:
        bodies = load.encode_bodies(c, workload)
        first_ms = load.first_latency_ms(c, bodies)
        targets = [load.Target(config.target_model, c, bodies)]
        observe = _observer([], None)
        search = load.peak_qps(observe(lambda q: load.run_at(targets, workload, q, config.slo, config.client_threads,
                                                             config.probe_ms)),
                               start_qps=max(1.0, 0.5 * 1000 / first_ms), max_probes=config.max_probes)
        extra = _curve_points(config, search, targets, workload, observe, emit, name)
    except RequestFailed as exc:
        emit("done", {"name": name, "ok": False, "error": str(exc)})
        return _entry("remote", None, "failed", error=str(exc)[:600], target=config.target, transport=transport)
    finally:
        c.close()
    emit("done", {"name": name, "ok": True, "error": None})
    best = search.best.metrics if search.best else {}
    return _entry("remote", None, "ok" if search.best else "no QPS met the SLO", target=config.target,
                  transport=transport, protocol=config.protocol, **_peak_fields(search, best),
                  single_request_ms=round(first_ms, 3), points=_points(search) + extra)


def _confirmation(search: load.PeakSearch) -> dict:
    """Whether the peak held when probed again, and the p99 of that repetition (the noise between probes)."""
    if search.repeat is None:
        return {"peak_confirmed": None}
    return {"peak_confirmed": search.confirmed, "latency_ms_p99_repeat": search.repeat.metrics.get("latency_ms_p99")}


def save(store, config: ServeBenchConfig, result: ServeBenchResult, environment: dict) -> int:
    """Store the benchmark as a run: one variant per server config, its peak probe as scenario `server`
    (with goodput, and cost and energy at the SLO), and every load point in its session info."""
    from inferarena.results import ScenarioResult, VariantResult
    from inferarena.scenarios.base import QUICK_NOTE

    run_id = store.create_run(config.model_dump(mode="json") | {"kind": "serve-bench", "scenarios": ["server"]},
                              "serve-bench-" +
                              str(time.time_ns()), config.model, True, environment, result.workload, result.notes)
    for e in result.servers:
        key = Batching(**e.config).key() if "max_batch_size" in e.config else e.server.replace("_", "-")
        key += "-grpc" if e.transport == "grpc" else ""
        metrics = {k: v for k, v in e.best.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metrics.update({k: v for k, v in (("peak_qps_at_slo", e.peak_qps_at_slo), ("avg_batch_size", e.avg_batch_size))
                        if v is not None})
        if e.at_slo:
            metrics.update({k: v for k, v in (("cost_usd_per_1m", e.at_slo.usd_per_1m_requests),
                                              ("energy_j_per_query", e.at_slo.energy_j_per_request),
                                              ("goodput_qps", e.at_slo.goodput_qps)) if v is not None})
        scenarios = {} if not e.ok else {"server": ScenarioResult("server", True, None, QUICK_NOTE, metrics)}
        store.save_variant(run_id, VariantResult(
            name=f"{e.server}/{key}", runtime=e.server, precision="fp32", shape="fixed", knobs=e.config,
            kind=result.kind or "predict", status="ok" if e.ok else "failed", error=e.error,
            session_info=ServedInfo(e.points, result.slo, e.peak_confirmed, e.at_slo).as_dict(),
            scenarios=scenarios))
    store.finish_run(run_id)
    return run_id


# serve-bench's route per kind's `serving` protocol.
ROUTES = {"kserve-v2": _tensor_servers, "openai": _generative}


def to_json(result: ServeBenchResult, run_id: int | None) -> str:
    return json.dumps({"run_id": run_id, **result.as_dict()}, indent=2, default=float)
