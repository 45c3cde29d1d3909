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
    app,
    console,
    progress_bar,
    split_values,
    user_errors,
)


def _ints(values: Optional[list[str]], default: list[int]) -> list[int]:
    return [int(v) for v in split_values(values)] if values else default


def _floats(values: Optional[list[str]], default: list[float]) -> list[float]:
    return [float(v) for v in split_values(values)] if values else default


@app.command("serve-bench")
def serve_bench(
    model: Annotated[str, typer.Option(help="Bundled model name, HF folder, or .onnx file.")] = "minilm",
    servers: Annotated[Optional[list[str]], typer.Option(
        help=f"Servers, repeated or comma-separated: {', '.join(registry.SERVERS)}. Default: all. Each runs in "
        "an environment inferarena creates on first use (minutes), since their dependencies clash. A generative "
        "model (a GGUF such as smollm2) is served by llama.cpp's OpenAI-compatible server instead.")] = None,
    pipeline: Annotated[Optional[str], typer.Option(
        help="Serve this --pipelines preset's ONNX output (e.g. int8-dynamic-ac) instead of the FP32 export.")] = None,
    slo: Annotated[Optional[str], typer.Option(
        help="The service-level objective, per request: p99_ms=100 (99 % of requests within 100 ms; p90_ms=50 "
        "works too), or ttft_ms=500,tpot_ms=50 for a generative model. The peak QPS is the highest rate that meets "
        "it, and every point reports its attainment (the share of requests that met it) and goodput (the rate of "
        "those). Default: p99_ms=100, or --ttft-ms/--tpot-ms.")] = None,
    sla_p99_ms: Annotated[Optional[float], typer.Option(hidden=True, help="Same as --slo p99_ms=N.")] = None,
    max_batch: Annotated[Optional[list[str]], typer.Option(
        help="Server-side max batch sizes to sweep (1 = no batching). Default: 1,8.")] = None,
    max_delay_ms: Annotated[Optional[list[str]], typer.Option(
        help="Max queue delays (ms) to sweep for batch sizes above 1. Default: 2.")] = None,
    instances: Annotated[Optional[list[str]], typer.Option(
        help="Model instances (workers) to sweep, where the server has them. Default: 1.")] = None,
    multi_model: Annotated[Optional[str], typer.Option(
        help="Also serve this --pipelines preset's variant of the model (e.g. int8-dynamic-ac) on the same server, "
        "under a mixed load (requests alternate between the two), and report each model's p99.")] = None,
    concurrency: Annotated[Optional[list[str]], typer.Option(
        help="Closed-loop points: requests kept in flight, e.g. 1,2,4,8,16 (each client sends its next request "
        "when the last answers), with throughput, latency percentiles, attainment and goodput at each.")] = None,
    rates: Annotated[Optional[list[str]], typer.Option(
        help="Poisson rates (requests/s) to measure after the peak search, e.g. 5,10,20: the curve, not only the "
        "peak.")] = None,
    rate_sweep: Annotated[bool, typer.Option(
        "--rate-sweep", help="Also measure 25, 50, 75 and 125 % of each configuration's peak rate.")] = False,
    client_threads: Annotated[int, typer.Option(
        help="Client threads of the Poisson load, each with its own connection.")] = 32,
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
    usd_per_hour: Annotated[Optional[float], typer.Option(
        help="The host's price per hour for $/1M requests at the SLO. Default: the built-in price of the cheapest "
        "cloud instance like this host (an estimate, labelled so).")] = None,
    instance: Annotated[Optional[str], typer.Option(
        help="Price $/1M requests as this built-in instance, e.g. aws/c7i.large.")] = None,
    device: DeviceOption = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")] = None,
    db: DbOption = DEFAULT_DB,
    cache_dir: Annotated[Path, typer.Option(help="Pass cache (the ONNX export is reused from `run`).")] = DEFAULT_CACHE,
    debug: DebugOption = False,
) -> None:
    """Deploy a model on Triton, TorchServe and MLServer (127.0.0.1, free ports), sweep their batching,
    and find each configuration's peak QPS within the SLO under LoadGen's Server scenario; then the curves
    you ask for (--rates, --rate-sweep, --concurrency), each point with its SLO attainment and goodput, and
    $/1M requests and J/request at the peak.

    A generative model (--model smollm2, or a .gguf) is served by llama.cpp's OpenAI-compatible server,
    streamed, and the peak request rate is the highest whose TTFT and TPOT p99 meet --ttft-ms and --tpot-ms.

    Examples:
      inferarena serve-bench --servers mlserver --max-batch 1,4,8 --max-delay-ms 1,5
      inferarena serve-bench --quick --concurrency 1,4,16 --slo p99_ms=100
      inferarena serve-bench --servers triton --rates 5,10,20 --rate-sweep
      inferarena serve-bench --servers triton,mlserver --transport http,grpc
      inferarena serve-bench --model smollm2 --slo ttft_ms=1000,tpot_ms=50
      inferarena serve-bench --model smollm2 --target http://127.0.0.1:8080 --protocol openai --target-model m
      inferarena serve-bench --target http://10.0.0.5:8000 --protocol kserve-v2 --target-model minilm
    """
    from inferarena.cli_common import open_db
    from inferarena.config import CostConfig, GenerationConfig
    from inferarena.environment import capture
    from inferarena.serving import bench
    from inferarena.serving.servers import Batching
    from inferarena.serving.slo import Slo

    with user_errors(debug):
        objective = Slo.parse(slo) if slo else Slo(latency_ms=sla_p99_ms or 100.0)
        if objective.ttft_ms is not None or objective.tpot_ms is not None:
            ttft_ms = objective.ttft_ms if objective.ttft_ms is not None else ttft_ms
            tpot_ms = objective.tpot_ms if objective.tpot_ms is not None else tpot_ms
            objective = Slo(latency_ms=objective.latency_ms or 100.0, percentile=objective.percentile)
        sweep = [Batching(max_batch_size=b, max_delay_ms=d if b > 1 else 0.0, instances=i)
                 for i in _ints(instances, [1]) for b in _ints(max_batch, [1, 8])
                 for d in (_floats(max_delay_ms, [2.0]) if b > 1 else [0.0])]
        config = bench.ServeBenchConfig(
            model=model, pipeline=pipeline, servers=split_values(servers) or None, batching=sweep,
            generation=GenerationConfig(ttft_ms_p99=ttft_ms, tpot_ms_p99=tpot_ms),
            slo=objective, client_threads=client_threads, concurrency=_ints(concurrency, []),
            rates=_floats(rates, []), rate_sweep=rate_sweep, probe_ms=probe_ms or (1000 if quick else 3000),
            max_probes=5 if quick else 8, quick=quick, target=target, protocol=protocol,
            target_model=target_model, multi_model=multi_model, transports=split_values(transport) or ["http"],
            device=device or "cpu", cost=CostConfig(instance=instance, usd_per_hour=usd_per_hour))
        with progress_bar() as (_, on_event):
            result = bench.serve_bench(config, cache_dir, Path(".inferarena"), on_event)
        store = open_db(db)
        run_id = bench.save(store, config, result, capture())
    _print(result, run_id)
    if json_path:
        json_path.write_text(bench.to_json(result, run_id))
        console.print(f"JSON: {escape(str(json_path))}")
    console.print(f"Curves: inferarena report {run_id}")
    if not any(e.ok for e in result.servers):
        raise typer.Exit(1)


def _fmt(value, spec: str = ".3g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _status(e, width: int = 120) -> str:
    return e.status if e.ok else f"[red]{escape(str(e.error or e.status))[:width]}[/]"


def _print_generative(result, run_id: int) -> None:
    table = Table(title=f"Serving {result.model} — peak requests/s with TTFT p99 ≤ {result.ttft_ms_p99:g} ms "
                  f"and TPOT p99 ≤ {result.tpot_ms_p99:g} ms (LoadGen Server, Poisson, streamed)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("server", "config", "peak req/s", "TTFT p99 ms", "TPOT p99 ms", "request p99 ms", "tok/s",
                   "tok/request", "1 request ms", "client CPU ms/q", "status"):
        table.add_column(header, justify="left" if header in ("server", "config", "status") else "right")
    for e in result.servers:
        table.add_row(escape(e.server), escape(e.label), _fmt(e.peak_qps_at_slo), _fmt(e.ttft_ms_p99),
                      _fmt(e.tpot_ms_p99), _fmt(e.latency_ms_p99), _fmt(e.tokens_per_s), _fmt(e.tokens_per_request),
                      _fmt(e.single_request_ms), _fmt(e.client_cpu_ms_per_query), _status(e, 160))
    console.print(table)
    _print_points(result)
    for e in result.servers:
        if e.ok:
            console.print(f"Best on {escape(e.server)}: {e.peak_qps_at_slo:.3g} requests/s (TTFT p99 "
                          f"{_fmt(e.ttft_ms_p99)} ms, TPOT p99 {_fmt(e.tpot_ms_p99)} ms)")
    _print_costs(result)
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"Stored as run {run_id}.")


def _print_points(result) -> None:
    """Every measured point, per server configuration: the rate curve and the closed-loop levels."""
    table = Table(title=f"Load points — SLO: {result.slo}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    llm = result.generative
    headers = ["server · config", "load", "done req/s", "p50 ms", "p90 ms", "p99 ms",
               *(("TTFT p99 ms", "TPOT p99 ms") if llm else ()), "attained %", "goodput req/s", "avg batch",
               "J/request", "meets SLO"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("server · config", "load", "meets SLO") else "right")
    rows = 0
    for e in result.servers:
        name = escape(f"{e.server} · {e.label}" + (" · gRPC" if e.transport == "grpc" else ""))
        for p in sorted(e.points, key=lambda p: (p.mode != "rate", p.offered, p.repeat)):
            load = (f"{p.offered:.4g} req/s" + (" (again)" if p.repeat else "")) if p.mode == "rate" \
                else f"{p.offered:.0f} in flight"
            energy = _fmt(p.energy_j_per_request) + ("" if p.energy_source != "estimate" else " est.")
            table.add_row(name, load, _fmt(p.completed_qps, ".4g"), _fmt(p.latency_ms_p50), _fmt(p.latency_ms_p90),
                          _fmt(p.latency_ms_p99), *((_fmt(p.ttft_ms_p99), _fmt(p.tpot_ms_p99)) if llm else ()),
                          _fmt(p.slo_attainment_pct, ".1f"), _fmt(p.goodput_qps, ".4g"), _fmt(p.avg_batch_size),
                          energy, "[green]yes[/]" if p.meets_slo else "[red]no[/]")
            name = ""
            rows += 1
    if rows:
        table.caption = ("attained: requests that met every bound, of those sent (failures count as missed); "
                         "goodput: completed requests/s × attained. A rate meets the SLO when LoadGen's percentile "
                         "is within the bound; a closed-loop level, when its attainment is. est. = estimated energy.")
        console.print(table)


def _print_costs(result) -> None:
    for e in result.servers:
        a = e.at_slo
        if a is None:
            continue
        cost = (f"${a.usd_per_1m_requests:.3g} per 1M requests" + (" (estimate: a built-in price)" if a.price_estimated
                                                                   else "") if a.usd_per_1m_requests is not None
                else "no price")
        energy = (f", {a.energy_j_per_request:.3g} J/request"
                  + (" (estimate)" if (a.energy_basis or "").startswith("estimate") else " (measured)")
                  if a.energy_j_per_request is not None else "")
        held = " (a peak not confirmed on repetition)" if e.peak_confirmed is False else ""
        console.print(f"At the SLO, {escape(e.server)} · {escape(e.label)}: {a.goodput_qps:.4g} good requests/s at "
                      f"{a.rate_qps:.4g} req/s offered{held}: {cost}{energy}")


def _print(result, run_id: int) -> None:
    from inferarena.serving import bench

    if result.generative:
        return _print_generative(result, run_id)
    table = Table(title=f"Serving {result.model} — peak QPS with {result.slo} (LoadGen Server, Poisson)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("server", "batching (max batch, delay)", "peak QPS", "p50 ms", "p99 ms", "p99 again ms",
                   "attained %", "goodput QPS", "avg batch", "client CPU ms/q", "status"):
        table.add_column(header, justify="left" if header.startswith(("server", "batching", "status")) else "right")
    for e in result.servers:
        label = e.label + (" · gRPC" if e.transport == "grpc" else "")
        peak = _fmt(e.peak_qps_at_slo, ".4g") + ("?" if e.peak_confirmed is False else "")
        table.add_row(escape(e.server), escape(label), peak, _fmt(e.latency_ms_p50), _fmt(e.latency_ms_p99),
                      _fmt(e.latency_ms_p99_repeat), _fmt(e.slo_attainment_pct, ".1f"), _fmt(e.goodput_qps, ".4g"),
                      _fmt(e.avg_batch_size), _fmt(e.client_cpu_ms_per_query), _status(e))
    if any(e.peak_confirmed is not None for e in result.servers):
        table.caption = ("The peak rate is probed twice; p99 again is the repetition. ? = it failed the SLO on "
                         "repetition at every rate tried: the machine was too noisy to confirm it.")
    console.print(table)
    _print_points(result)
    for e in result.servers:
        if e.models:
            parts = [f"{m} p50 {v['latency_ms_p50']:.3g} / p99 {v['latency_ms_p99']:.3g} ms ({v['queries']:.0f} queries)"
                     for m, v in e.models.items() if v.get("latency_ms_p99") is not None]
            console.print(f"{e.server} ({escape(e.label)}), two models at {e.peak_qps_at_slo:.4g} QPS: "
                          + "; ".join(parts))
    for name, e in bench.best_per_server(result.servers).items():
        gain = result.efficiency.get(bench.efficiency_key(e))
        unconfirmed = " (not confirmed on repetition)" if e.peak_confirmed is False else ""
        console.print(f"Best on {escape(name)}: {escape(e.label)}{' over gRPC' if e.transport == 'grpc' else ''}, "
                      f"{e.peak_qps_at_slo:.4g} QPS{unconfirmed} at p99 {_fmt(e.latency_ms_p99)} ms"
                      + (f"; dynamic batching ×{gain:.2f} the QPS without it" if gain else ""))
    _print_costs(result)
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"Stored as run {run_id}; client threads do not batch, each query is one request.")
