"""`inferarena serve-bench`: which server, and which batching, serves most queries within the SLA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from inferarena import registry
from inferarena.cli_common import (
    DEFAULT_CACHE,
    DEFAULT_DB,
    DbOption,
    DebugOption,
    DeviceOption,
    _progress,
    _split,
    app,
    console,
    user_errors,
)


def _ints(values: Optional[list[str]], default: list[int]) -> list[int]:
    return [int(v) for v in _split(values)] if values else default


def _floats(values: Optional[list[str]], default: list[float]) -> list[float]:
    return [float(v) for v in _split(values)] if values else default


@app.command("serve-bench")
def serve_bench(
    model: Annotated[str, typer.Option(help="Bundled model name, HF folder, or .onnx file.")] = "minilm",
    servers: Annotated[Optional[list[str]], typer.Option(
        help=f"Servers, repeated or comma-separated: {', '.join(registry.SERVERS)}. Default: all. Each runs in "
        "an environment inferarena creates on first use (minutes), since their dependencies clash. A generative "
        "model (a GGUF such as smollm2) is served by llama.cpp's OpenAI-compatible server instead.")] = None,
    pipeline: Annotated[Optional[str], typer.Option(
        help="Serve this --pipelines preset's ONNX output (e.g. int8-dynamic-ac) instead of the FP32 export.")] = None,
    sla_p99_ms: Annotated[float, typer.Option(help="p99 latency SLA (ms): the peak QPS is the highest that meets it.")] = 100.0,
    max_batch: Annotated[Optional[list[str]], typer.Option(
        help="Server-side max batch sizes to sweep (1 = no batching). Default: 1,8.")] = None,
    max_delay_ms: Annotated[Optional[list[str]], typer.Option(
        help="Max queue delays (ms) to sweep for batch sizes above 1. Default: 2.")] = None,
    instances: Annotated[Optional[list[str]], typer.Option(
        help="Model instances (workers) to sweep, where the server has them. Default: 1.")] = None,
    multi_model: Annotated[Optional[str], typer.Option(
        help="Also serve this --pipelines preset's variant of the model (e.g. int8-dynamic-ac) on the same server, "
        "under a mixed load (requests alternate between the two), and report each model's p99.")] = None,
    concurrency: Annotated[int, typer.Option(help="Client threads, each with its own connection.")] = 32,
    probe_ms: Annotated[Optional[int], typer.Option(
        help="Duration of each LoadGen Server probe (ms). Default: 3000, or 1000 with --quick.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help=(
        "A first look, as for run and search: 1 s probes and at most 5 per configuration, so the peak QPS is "
        "coarser. Results are never MLPerf-compliant either way."))] = False,
    transport: Annotated[Optional[list[str]], typer.Option(
        help="How the load reaches the servers: http, grpc (KServe v2 gRPC: Triton and MLServer), or both "
        "(http,grpc), each measured as its own entry. Default: http.")] = None,
    target: Annotated[Optional[str], typer.Option(
        help="Remote mode: benchmark a running endpoint (http://host:port; host:port for gRPC) instead of "
        "starting servers.")] = None,
    protocol: Annotated[str, typer.Option(
        help="Remote protocol: kserve-v2 (Triton, MLServer, OpenVINO Model Server), kserve-v2-grpc, torchserve, tfserving-rest "
        "(written from TF Serving's REST docs, not checked against a real one), or openai (streamed "
        "/v1/completions: vLLM, TGI, llama.cpp; for generative models).")] = "kserve-v2",
    target_model: Annotated[Optional[str], typer.Option(help="Remote mode: the model's name on the endpoint.")] = None,
    ttft_ms: Annotated[float, typer.Option(
        help="Generative models: p99 bound on time to first token (ms) for the peak request rate.")] = 2000.0,
    tpot_ms: Annotated[float, typer.Option(
        help="Generative models: p99 bound on time per output token (ms) for the peak request rate.")] = 200.0,
    device: DeviceOption = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")] = None,
    db: DbOption = DEFAULT_DB,
    cache_dir: Annotated[Path, typer.Option(help="Pass cache (the ONNX export is reused from `run`).")] = DEFAULT_CACHE,
    debug: DebugOption = False,
) -> None:
    """Deploy a model on Triton, TorchServe and MLServer (127.0.0.1, free ports), sweep their batching,
    and find each configuration's peak QPS within the p99 SLA under LoadGen's Server scenario.

    A generative model (--model smollm2, or a .gguf) is served by llama.cpp's OpenAI-compatible server,
    streamed, and the peak request rate is the highest whose TTFT and TPOT p99 meet --ttft-ms and --tpot-ms.

    Examples:
      inferarena serve-bench --servers mlserver --max-batch 1,4,8 --max-delay-ms 1,5
      inferarena serve-bench --servers triton,mlserver --transport http,grpc
      inferarena serve-bench --model smollm2 --ttft-ms 1000 --tpot-ms 50
      inferarena serve-bench --model smollm2 --target http://127.0.0.1:8080 --protocol openai --target-model m
      inferarena serve-bench --target http://10.0.0.5:8000 --protocol kserve-v2 --target-model minilm
    """
    from inferarena.cli_common import open_db
    from inferarena.config import GenerationConfig
    from inferarena.environment import capture
    from inferarena.serving import bench
    from inferarena.serving.servers import Batching

    with user_errors(debug):
        sweep = [Batching(max_batch_size=b, max_delay_ms=d if b > 1 else 0.0, instances=i)
                 for i in _ints(instances, [1]) for b in _ints(max_batch, [1, 8])
                 for d in (_floats(max_delay_ms, [2.0]) if b > 1 else [0.0])]
        config = bench.ServeBenchConfig(
            model=model, pipeline=pipeline, servers=_split(servers) or None, batching=sweep,
            generation=GenerationConfig(ttft_ms_p99=ttft_ms, tpot_ms_p99=tpot_ms),
            sla_p99_ms=sla_p99_ms, concurrency=concurrency, probe_ms=probe_ms or (1000 if quick else 3000),
            max_probes=5 if quick else 8, quick=quick, target=target, protocol=protocol,
            target_model=target_model, multi_model=multi_model, transports=_split(transport) or ["http"],
            device=device or "cpu")
        with _progress() as (_, on_event):
            result = bench.serve_bench(config, cache_dir, Path(".inferarena"), on_event)
        store = open_db(db)
        run_id = bench.save(store, config, result, capture(), result["workload"])
    _print(result, run_id)
    if json_path:
        json_path.write_text(bench.to_json(result, run_id))
        console.print(f"JSON: {escape(str(json_path))}")
    if not any(e["status"] == "ok" for e in result["servers"]):
        raise typer.Exit(1)


def _print_generative(result: dict, run_id: int) -> None:
    table = Table(title=f"Serving {result['model']} — peak requests/s with TTFT p99 ≤ {result['ttft_ms_p99']:g} ms "
                  f"and TPOT p99 ≤ {result['tpot_ms_p99']:g} ms (LoadGen Server, Poisson, streamed)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("server", "config", "peak req/s", "TTFT p99 ms", "TPOT p99 ms", "request p99 ms", "tok/s",
                   "tok/request", "1 request ms", "client CPU ms/q", "status"):
        table.add_column(header, justify="left" if header in ("server", "config", "status") else "right")
    for e in result["servers"]:
        def f(key, spec=".3g"):
            return format(e[key], spec) if isinstance(e.get(key), (int, float)) else "-"
        status = e["status"] if e["status"] == "ok" else f"[red]{escape(str(e.get('error') or e['status']))[:160]}[/]"
        table.add_row(escape(e["server"]), escape(e.get("label", "")), f("peak_qps_at_slo"), f("ttft_ms_p99"), f("tpot_ms_p99"),
                      f("latency_ms_p99"), f("tokens_per_s"), f("tokens_per_request"), f("single_request_ms"),
                      f("client_cpu_ms_per_query"), status)
    console.print(table)
    for e in result["servers"]:
        if e["status"] == "ok":
            console.print(f"Best on {escape(e['server'])}: {e['peak_qps_at_slo']:.3g} requests/s (TTFT p99 "
                          f"{e['ttft_ms_p99']:.3g} ms, TPOT p99 {e['tpot_ms_p99']:.3g} ms)")
    for note in result["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"Stored as run {run_id}.")


def _print(result: dict, run_id: int) -> None:
    from inferarena.serving import bench

    if result.get("ttft_ms_p99") is not None:
        return _print_generative(result, run_id)
    sla = result["sla_p99_ms"]
    table = Table(title=f"Serving {result['model']} — peak QPS with p99 ≤ {sla:g} ms (LoadGen Server, Poisson)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("server", "batching (max batch, delay)", "peak QPS", "p50 ms", "p99 ms", "p99 again ms", "avg batch",
                   "client CPU ms/q", "status"):
        table.add_column(header, justify="left" if header.startswith(("server", "batching", "status")) else "right")
    for e in result["servers"]:
        def f(key, spec=".3g"):
            return format(e[key], spec) if isinstance(e.get(key), (int, float)) else "-"
        status = e["status"] if e["status"] == "ok" else f"[red]{escape(str(e.get('error') or e['status']))[:120]}[/]"
        label = e["label"] + (" · gRPC" if e.get("transport") == "grpc" else "")
        peak = f("peak_qps_at_slo", ".4g") + ("?" if e.get("peak_confirmed") is False else "")
        table.add_row(escape(e["server"]), escape(label), peak, f("latency_ms_p50"),
                      f("latency_ms_p99"), f("latency_ms_p99_repeat"), f("avg_batch_size"), f("client_cpu_ms_per_query"), status)
    if any(e.get("peak_confirmed") is not None for e in result["servers"]):
        table.caption = ("The peak rate is probed twice; p99 again is the repetition. ? = it failed the SLA on "
                         "repetition at every rate tried: the machine was too noisy to confirm it.")
    console.print(table)
    for e in result["servers"]:
        if e.get("models"):
            parts = [f"{m} p50 {v['latency_ms_p50']:.3g} / p99 {v['latency_ms_p99']:.3g} ms ({v['queries']:.0f} queries)"
                     for m, v in e["models"].items() if v.get("latency_ms_p99") is not None]
            console.print(f"{e['server']} ({escape(e['label'])}), two models at {e['peak_qps_at_slo']:.4g} QPS: "
                          + "; ".join(parts))
    for name, e in bench.best_per_server(result["servers"]).items():
        gain = result["efficiency"].get(bench.efficiency_key(e))
        unconfirmed = " (not confirmed on repetition)" if e.get("peak_confirmed") is False else ""
        console.print(f"Best on {escape(name)}: {escape(e['label'])}{' over gRPC' if e.get('transport') == 'grpc' else ''}, "
                      f"{e['peak_qps_at_slo']:.4g} QPS{unconfirmed} at p99 {e['latency_ms_p99']:.3g} ms"
                      + (f"; dynamic batching ×{gain:.2f} the QPS without it" if gain else ""))
    for note in result["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"Stored as run {run_id}; client threads do not batch, each query is one request.")
