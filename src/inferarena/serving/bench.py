"""`inferarena serve-bench`: one model variant on each installed server, for each batching config,
loaded by LoadGen's Server scenario until the peak QPS within the p99 SLA is found.

For each (server, batching): stage the ONNX model in a fresh folder, start the server in its managed
environment on free loopback ports, wait for readiness, check one answer against local ONNX Runtime,
search the peak QPS, read the batch sizes the server formed during the best probe, and stop the
server (its whole process group). A server that fails to start or dies is recorded with its log tail
and the sweep goes on. Results go to the same SQLite store as `run` (one variant per server config,
scenario `server`) and to the `--json` document's `servers[]`.
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
from inferarena.config import GenerationConfig, WorkloadConfig
from inferarena.errors import ConfigError, InferarenaError
from inferarena.fsutil import private_dir
from inferarena.serving import load
from inferarena.serving.clients import GRPC_PROTOCOLS, RequestFailed, client
from inferarena.serving.process import ServerFailed, ServerProcess, free_port
from inferarena.serving.servers import Batching, ModelServer, stage_model

EventSink = Callable[[str, dict], None]


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
    sla_p99_ms: float = Field(100.0, gt=0, description="p99 latency bound: the peak QPS is the highest that meets it.")
    concurrency: int = Field(32, ge=1, description="Client threads (each with its own connection).")
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
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig, description="Generative models: prompt/output lengths and the TTFT and "
        "TPOT p99 bounds that decide the peak request rate.")


def serve_bench(config: ServeBenchConfig, cache_dir: Path, work_dir: Path, emit: EventSink | None = None) -> dict:
    """Run the whole benchmark; returns {"model", "servers": [...], "efficiency": {...}, "notes"}.

    How a model is served is its kind's `serving` route: tensors over KServe v2 (and the other
    servers' own APIs), or token streams over the OpenAI API."""
    from inferarena import kinds, models, workloads
    from inferarena.hardware import resolve_device

    emit = emit or (lambda kind, data: None)
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
    result = {**ROUTES[kind.serving](config, artifact, workload, cache_dir, work_dir, emit), "kind": kind.name,
              "device": device}
    if config.quick:
        result["notes"] = [f"quick: {config.probe_ms} ms probes, at most {config.max_probes} per configuration, so the "
                           "peak QPS is coarse (drop --quick for 3000 ms probes, up to 8)", *result["notes"]]
    return result


def _tensor_servers(config: ServeBenchConfig, artifact, workload, cache_dir: Path, work_dir: Path,
                    emit: EventSink) -> dict:
    """Models that answer batches: the ONNX export on each registered server, over KServe v2 or their own API."""
    notes: list[str] = list(getattr(workload, "notes", []))
    entries: list[dict] = []
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
    return {"model": config.model, "servers": entries, "efficiency": efficiency(entries), "notes": notes,
            "sla_p99_ms": config.sla_p99_ms, "workload": workload.describe()}


def best_per_server(entries: list[dict]) -> dict[str, dict]:
    """Each server's highest peak QPS, preferring peaks that held when probed again."""
    best: dict[str, dict] = {}
    for e in entries:
        if e["status"] != "ok" or not e.get("peak_qps_at_slo"):
            continue
        rank = (e.get("peak_confirmed") is not False, e["peak_qps_at_slo"])
        held = best.get(e["server"])
        if held is None or rank > (held.get("peak_confirmed") is not False, held["peak_qps_at_slo"]):
            best[e["server"]] = e
    return best


def efficiency_key(entry: dict) -> str:
    """Batching is compared within one transport: "triton", "triton gRPC"."""
    return entry["server"] + (" gRPC" if entry.get("transport") == "grpc" else "")


def efficiency(entries: list[dict]) -> dict[str, float | None]:
    """Per server and transport: peak QPS of its best batched config over its peak without batching."""
    out: dict[str, float | None] = {}
    for name in dict.fromkeys(efficiency_key(e) for e in entries):
        # A peak that failed its repetition is not a figure to divide by, nor to divide.
        mine = [e for e in entries if efficiency_key(e) == name and e["status"] == "ok"
                and e.get("peak_confirmed") is not False]
        plain = [e["peak_qps_at_slo"] for e in mine if e["config"].get("max_batch_size") == 1 and e["peak_qps_at_slo"]]
        batched = [e["peak_qps_at_slo"] for e in mine if e["config"].get("max_batch_size", 1) > 1
                   and e["peak_qps_at_slo"]]
        out[name] = round(max(batched) / max(plain), 3) if plain and batched else None
    return out


def _entry(server: str, batching: Batching | None, status: str, **fields: Any) -> dict:
    return {"server": server, "config": batching.model_dump() if batching else {},
            "label": batching.label() if batching else "remote endpoint", "status": status,
            "peak_qps_at_slo": None, "latency_ms_p99": None, "avg_batch_size": None, "transport": "http", **fields}


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
        built = arena.optimize(run_config, preset(pipeline), arena.Paths(cache_dir, work_dir))["artifact"]
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


def _bench_server(server: ModelServer, python: Path, batching: Batching, config: ServeBenchConfig, models: list,
                  workload, work_dir: Path, emit: EventSink, transport: str = "http") -> dict:
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
            probe = _probe_with_batches(targets, workload, config, [s.folder for s in served], process,
                                        lambda: server.batch_counters(ports))
            search = load.peak_qps(probe, start_qps=max(1.0, 0.5 * 1000 / first_ms), max_probes=config.max_probes)
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
    return _entry(server.name, batching, "ok" if search.best else "no QPS met the SLA", transport=transport,
                  peak_qps_at_slo=search.peak_qps, latency_ms_p99=best.get("latency_ms_p99"),
                  latency_ms_p50=best.get("latency_ms_p50"), latency_ms_p90=best.get("latency_ms_p90"),
                  completed_qps=best.get("completed_qps"), avg_batch_size=best.get("avg_batch_size"),
                  server_reported_avg_batch_size=best.get("server_reported_avg_batch_size"),
                  client_cpu_ms_per_query=best.get("client_cpu_ms_per_query"), errors=best.get("errors"),
                  ready_s=round(ready_s, 2), single_request_ms=round(first_ms, 3), models=per_model,
                  **_confirmation(search), probes=_probes(search), best=best)


def _probe_with_batches(targets, workload, config: ServeBenchConfig, folders: list[Path], process: ServerProcess,
                        counters: Callable[[], tuple[float, float] | None] = lambda: None):
    """A probe function that also reads the batch sizes the server formed during that probe: from our
    model code's log, and from the server's own statistics where it keeps them."""
    from inferarena.serving.backend import read_batches

    def probe(qps: float) -> load.Probe:
        before = [len(read_batches(f)) for f in folders]
        counted = counters()
        result = load.run_at(targets, workload, qps, config.sla_p99_ms, config.concurrency, config.probe_ms)
        sizes = [size for f, start in zip(folders, before, strict=True) for size in read_batches(f)[start:]]
        if sizes:
            result.metrics["avg_batch_size"] = round(float(np.mean(sizes)), 3)
            result.metrics["server_batches"] = float(len(sizes))
        after = counters()
        if counted and after and after[1] > counted[1]:
            result.metrics["server_reported_avg_batch_size"] = round((after[0] - counted[0]) / (after[1] - counted[1]), 3)
        if not process.alive():
            raise ServerFailed(f"{process.name} died during the load: {process.tail()}", f"see {process.log}")
        return result

    return probe


GENERATIVE_SERVERS = ("llama_cpp_server",)


def _generative(config: ServeBenchConfig, artifact, workload, cache_dir: Path, work_dir: Path, emit: EventSink) -> dict:
    """A generative model: llama.cpp's OpenAI-compatible server (or a remote OpenAI endpoint), streamed, with
    the peak request rate whose TTFT and TPOT p99 meet the bounds."""
    from inferarena.hardware import host
    from inferarena.serving import openai

    g = config.generation
    notes = list(workload.notes) + [
        f"generative model: requests/s within TTFT p99 <= {g.ttft_ms_p99:g} ms and TPOT p99 <= {g.tpot_ms_p99:g} ms "
        "(streamed OpenAI completions, greedy); the server runs one request at a time, so no batching is swept"]
    texts = openai.prompt_texts(workload)
    entries: list[dict] = []
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
            client = openai.OpenAIClient(url, config.target_model or "model", timeout_s=120)
            client.suppress = artifact.meta.get("eos_token_id")
            endpoint = openai.LLMEndpoint(server, client, texts)
            found, single = openai.search(endpoint, workload, g, config.concurrency, config.probe_ms,
                                          config.max_probes, process)
            status = "ok" if found.best else "no request rate met the TTFT/TPOT bounds"
            entries.append({"server": server, "config": {"threads": threads, "n_ctx": g.context}, "label": label,
                            "status": status, "avg_batch_size": None, "protocol": "openai", **openai.entry_fields(found, single)})
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
    return {"model": config.model, "servers": entries, "efficiency": {}, "notes": notes,
            "sla_p99_ms": None, "ttft_ms_p99": g.ttft_ms_p99, "tpot_ms_p99": g.tpot_ms_p99,
            "workload": workload.describe()}


def _remote(config: ServeBenchConfig, workload, emit: EventSink) -> dict:
    if not config.target_model:
        raise ConfigError("remote mode needs the model's name on the endpoint", "pass --target-model NAME")
    name = f"remote {config.target}"
    emit("start", {"name": name})
    c = client(config.protocol, config.target, config.target_model)
    try:
        bodies = load.encode_bodies(c, workload)
        first_ms = load.first_latency_ms(c, bodies)
        targets = [load.Target(config.target_model, c, bodies)]
        search = load.peak_qps(lambda q: load.run_at(targets, workload, q, config.sla_p99_ms, config.concurrency,
                                                     config.probe_ms),
                               start_qps=max(1.0, 0.5 * 1000 / first_ms), max_probes=config.max_probes)
    except RequestFailed as exc:
        emit("done", {"name": name, "ok": False, "error": str(exc)})
        return _entry("remote", None, "failed", error=str(exc)[:600], target=config.target,
                      transport="grpc" if config.protocol in GRPC_PROTOCOLS else "http")
    finally:
        c.close()
    emit("done", {"name": name, "ok": True, "error": None})
    best = search.best.metrics if search.best else {}
    return _entry("remote", None, "ok" if search.best else "no QPS met the SLA", target=config.target,
                  transport="grpc" if config.protocol in GRPC_PROTOCOLS else "http",
                  protocol=config.protocol, peak_qps_at_slo=search.peak_qps, latency_ms_p99=best.get("latency_ms_p99"),
                  latency_ms_p50=best.get("latency_ms_p50"), completed_qps=best.get("completed_qps"),
                  client_cpu_ms_per_query=best.get("client_cpu_ms_per_query"), single_request_ms=round(first_ms, 3),
                  **_confirmation(search), probes=_probes(search), best=best)


def _probes(search: load.PeakSearch) -> list[dict]:
    return [{"target_qps": round(p.target_qps, 2), "ok": p.ok, "repeat": p.repeat,
             "latency_ms_p99": p.metrics.get("latency_ms_p99"), "avg_batch_size": p.metrics.get("avg_batch_size"),
             "error": p.error_sample} for p in search.probes]


def _confirmation(search: load.PeakSearch) -> dict:
    """Whether the peak held when probed again, and the p99 of that repetition (the noise between probes)."""
    if search.repeat is None:
        return {"peak_confirmed": None}
    return {"peak_confirmed": search.confirmed, "latency_ms_p99_repeat": search.repeat.metrics.get("latency_ms_p99")}


def save(store, config: ServeBenchConfig, result: dict, environment: dict, workload: dict) -> int:
    """Store the benchmark as a run: one variant per server config, its best probe as scenario `server`."""
    from inferarena.results import ScenarioResult, VariantResult
    from inferarena.scenarios.base import QUICK_NOTE

    run_id = store.create_run(config.model_dump(mode="json") | {"kind": "serve-bench", "scenarios": ["server"]},
                              "serve-bench-" +
                              str(time.time_ns()), config.model, True, environment, workload, result["notes"])
    for e in result["servers"]:
        key = Batching(**e["config"]).key() if "max_batch_size" in e["config"] else e["server"].replace("_", "-")
        key += "-grpc" if e.get("transport") == "grpc" else ""
        metrics = {k: v for k, v in (e.get("best") or {}).items() if isinstance(v, (int, float))}
        metrics.update({k: e[k] for k in ("peak_qps_at_slo", "avg_batch_size") if e.get(k) is not None})
        scenarios = {} if e["status"] != "ok" else {"server": ScenarioResult("server", True, None, QUICK_NOTE, metrics)}
        store.save_variant(run_id, VariantResult(
            name=f"{e['server']}/{key}", runtime=e["server"], precision="fp32", shape="fixed", knobs=e["config"],
            kind=result.get("kind", "predict"), status="ok" if e["status"] == "ok" else "failed", error=e.get("error"),
            session_info={"probes": e.get("probes")}, scenarios=scenarios))
    store.finish_run(run_id)
    return run_id


# serve-bench's route per kind's `serving` protocol.
ROUTES = {"kserve-v2": _tensor_servers, "openai": _generative}


def to_json(result: dict, run_id: int | None) -> str:
    doc = {"run_id": run_id, **result}
    for e in doc["servers"]:
        e.pop("best", None)
    return json.dumps(doc, indent=2, default=float)
