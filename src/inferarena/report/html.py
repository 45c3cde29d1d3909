"""One self-contained HTML file per run: plotly.js inlined (works offline), every user string escaped."""

from __future__ import annotations

import html

import numpy as np

from inferarena import kinds, registry
from inferarena.hardware import MemoryBandwidth
from inferarena.report.json_export import describe_workload
from inferarena.results import RunRecord, VariantResult, higher_is_better, metric
from inferarena.serving.records import LoadPoint, ServedInfo

E = html.escape
# Leaderboard columns, by flat metric key; each header and format comes from the metric catalogue
# (`Metric.short`, after its scenario's `short`), so the units stay in the headers as in the keys.
COLUMNS = [
    "fidelity.cos_min", "fidelity.top1_agreement", "single_stream.latency_ms_p50", "single_stream.latency_ms_p90",
    "single_stream.latency_ms_p99", "multi_stream.latency_ms_p99", "server.target_qps", "server.latency_ms_p99",
    "offline.throughput_sps", "offline.energy_j_per_query", "offline.cost_usd_per_1m", "offline.pct_of_peak",
    "offline.useful_pct_of_peak", "offline.useful_pct_of_best_peak", "offline.padding_waste_pct",
    "fidelity.token_agreement", "fidelity.perplexity", "generation.ttft_ms_p50", "generation.ttft_ms_p90",
    "generation.tpot_ms_p50", "generation.tpot_ms_p90", "generation.tokens_per_s", "generation.decode_tokens_per_s",
    "generation.pct_of_bandwidth", "generation.offline_tokens_per_s", "generation.server_requests_per_s",
    "adaptive.layers_mean", "adaptive.tokens_kept_ratio", "adaptive.ffn_kept_ratio", "adaptive.active_params_ratio",
    "adaptive.acceptance_rate", "adaptive.tokens_per_step", "adaptive.controller_ms", "workflow.accuracy",
    "workflow.accuracy_ci_low", "workflow.accuracy_ci_high", "workflow.prompt_tokens", "workflow.completion_tokens",
    "workflow.llm_calls", "workflow.wall_s", "workflow.energy_j_per_task", "workflow.prune_rate",
    "workflow.rectify_rounds_mean", "workflow.tokens_per_correct", "workflow.truncated_rate",
    "workflow.accuracy_per_1k_tokens", "workflow.cost_usd_per_1k_tasks", "memory.peak_rss_mb",
    "single_stream.round_spread_pct", "offline.round_spread_pct", "single_stream.ci_half_width_pct",
    "offline.ci_half_width_pct",
]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px} header h1{margin:0;font-size:22px}
header .mode{display:inline-block;margin-top:6px;padding:2px 8px;border-radius:4px;background:#f0b429;color:#1d2330;font-size:13px}
main{padding:20px 28px;max-width:1400px} section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:17px;margin:0 0 10px} dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0;font-size:14px}
dt{color:#5b6475} dd{margin:0} table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #e3e6eb;text-align:right;white-space:nowrap} th{cursor:pointer;background:#f0f2f5;position:sticky;top:0}
td:first-child,th:first-child,td.text,th.text{text-align:left} .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px} .grid section{min-width:0}
.bad{color:#b42318} .note{color:#5b6475;font-size:13px} pre{white-space:pre-wrap;font-size:12px;margin:4px 0}
"""

SORT_SCRIPT = """
// Plots drawn before the page's scrollbar appeared are too wide: fit each to its card once laid out.
window.addEventListener('load', function(){
  document.querySelectorAll('.js-plotly-plot').forEach(function(p){ Plotly.Plots.resize(p); });
});
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v, nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def render(run: RunRecord, samples: dict[tuple[str, str], np.ndarray], recommendation=None) -> str:
    import plotly
    import plotly.graph_objects as go

    ok = run.ok
    colors = {rt: PALETTE[i % len(PALETTE)] for i, rt in enumerate(sorted({v.runtime for v in ok}))}
    figures = [f for f in (
        *(_pareto(go, ok, colors, p.x, p.y, p.x_label, p.y_label, p.title, (higher_is_better(p.x), higher_is_better(p.y)))
          for p in kinds.of_run(run).report_plots(ok)),
        _percentiles(go, ok, colors),
        _cdf(go, ok, colors, samples),
        _throughput_by_batch(go, ok, colors, run),
        _server(go, ok, colors),
        *_load_curves(go, ok),
    ) if f is not None]
    plots = "\n".join(
        f'<section class="plot">{fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot{i}", default_width="100%", config={"responsive": True, "displaylogo": False})}</section>'
        for i, fig in enumerate(figures)
    )
    mode = kinds.of_run(run).mode(run.quick)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>inferarena run {run.run_id}: {E(run.model)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style>
<script>{plotly.offline.get_plotlyjs()}</script></head>
<body><header><h1>inferarena run {run.run_id} · {E(run.model)}</h1><span class="mode">{E(mode)}</span></header>
<main>
{_environment(run)}
{_recommendation(recommendation)}
{_leaderboard(run, ok)}
{_kind_sections(run)}
<div class="grid">{plots}</div>
{_failures(run)}
</main><script>{SORT_SCRIPT}</script></body></html>
"""


def runtime_builds(run: RunRecord) -> dict[str, str]:
    """What each runtime was built with, as its sessions reported it (`session_info["build"]`, e.g. llama.cpp's
    CPU features and whether its extra buffers were on), first variant of each runtime."""
    builds: dict[str, str] = {}
    for v in run.variants:
        build = (v.session_info or {}).get("build")
        if build and v.runtime not in builds:
            builds[v.runtime] = str(build)
    return builds


def _environment(run: RunRecord) -> str:
    env = run.environment
    energy = next((m.metrics.get("energy_basis") for v in run.variants for m in v.scenarios.values()
                   if m.metrics.get("energy_basis")), None)
    peaks = env.get("gemm_peak_gflops") or {}
    builds = runtime_builds(run)
    items = [
        ("CPU", f"{env.get('cpu_model')} · {env.get('logical_cores')} logical / {env.get('physical_cores')} physical cores"
                f" · {env.get('memory_gb')} GiB" + (" · SIMULATED host (INFERARENA_HOST): the figures are the real "
                                                     "machine's" if env.get("simulated_host") else "")),
        ("CPU features", " ".join(env.get("cpu_features") or []) or "-"),
        *([("Runtime builds", "; ".join(f"{name}: {build}" for name, build in builds.items()))] if builds else []),
        *([("GPU", "; ".join(f"{g.get('name')} · {g.get('memory_gb')} GB · driver {g.get('driver')} · CUDA "
                              f"{g.get('cuda_version')} · compute capability {g.get('compute_capability')}"
                              for g in env["gpus"]))] if env.get("gpus") else []),
        ("Device", env.get("device") or "cpu"),
        ("Mode", kinds.of_run(run).mode(run.quick)),
        ("Run", f"{run.created_at} · status {run.status}"),
        ("Workload", describe_workload(run.workload)),
        ("Python / OS", f"{env.get('python')} · {env.get('os')}"),
        ("Packages", ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())),
        ("GEMM peak", ", ".join(f"{p} {g:,.0f} {'GOP/s' if p == 'int8' else 'GFLOP/s'}" for p, g in peaks.items()) or "-"),
        *([("Memory bandwidth", f"read {bw.read_gb_per_s:.1f} GB/s, triad {bw.triad_gb_per_s:.1f} GB/s "
            f"({bw.threads} threads); % BW roofline = decode tok/s × bytes read per token ÷ read bandwidth")]
          if (bw := MemoryBandwidth.of(env.get("memory_bandwidth_gb_per_s"))) else []),
        ("Energy", energy or "-"),
        ("Cost", env.get("price") or "-"),
    ]
    rows = "".join(f"<dt>{E(k)}</dt><dd>{E(str(v))}</dd>" for k, v in items)
    notes = "".join(f'<p class="note">note: {E(n)}</p>' for n in run.notes)
    return f'<section id="environment"><h2>Environment</h2><dl>{rows}</dl>{notes}</section>'


def _recommendation(recommendation) -> str:
    if recommendation is None:
        return ""
    rec = recommendation
    state = "" if rec.met else ' <span class="bad">(constraints not met)</span>'
    front = ", ".join(E(n) for n in rec.pareto) or "-"
    return (f'<section id="recommendation"><h2>Recommendation · profile {E(rec.profile)}{state}</h2>'
            f'<p><b>{E(rec.variant or "none")}</b></p><p>{E(rec.explanation)}</p>'
            f'<p class="note">Pareto front (p90 latency, throughput, cos_min): {front}</p></section>')


def column(key: str) -> tuple[str, str]:
    """A flat metric key's header and format, from the catalogue: the scenario's short name, then the metric's."""
    group = key.rpartition(".")[0]
    found = metric(key)
    prefix = registry.load(registry.SCENARIOS, group).short if group in registry.SCENARIOS else ""
    return f"{prefix} {found.short}".strip(), found.fmt


def _leaderboard(run: RunRecord, ok: list[VariantResult]) -> str:
    flat = {v.name: v.flat() for v in ok}
    present = [(k, *column(k)) for k in COLUMNS if any(k in flat[v.name] for v in ok)]
    head = '<th class="text">variant</th><th class="text">runtime</th><th class="text">precision</th>' \
           '<th class="text">shape</th>' + "".join(f"<th>{E(h)}</th>" for _, h, _ in present) + \
           '<th class="text">passes</th><th class="text">kept in FP32</th>'
    body = []
    for v in ok:
        metrics = flat[v.name]
        cells = [f'<td class="text" data-v="{E(getattr(v, k))}">{E(getattr(v, k))}</td>'
                 for k in ("name", "runtime", "precision", "shape")]
        for key, _, spec in present:
            value = metrics.get(key)
            shown = format(value, spec) if isinstance(value, (int, float)) else "-"
            cells.append(f'<td data-v="{E(str(value if value is not None else ""))}">{E(shown)}</td>')
        passes = ", ".join(p.name + (" (cached)" if p.cached else "") for p in v.passes) or "-"
        kept = ", ".join(v.kept_layers or []) or "-"
        cells += [f'<td class="text" data-v="{E(passes)}">{E(passes)}</td>',
                  f'<td class="text" data-v="{E(kept)}">{E(kept)}</td>']
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<section id="leaderboard"><h2>Leaderboard</h2><p class="note">Click a header to sort. '
            f'Energy per query is labelled by its source in the environment card.</p>'
            f'<div style="overflow-x:auto"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div></section>')


def _kind_sections(run: RunRecord) -> str:
    """What the run's kind adds: its findings (sentences) and its own tables, e.g. a workflow's per-agent costs."""
    kind = kinds.of_run(run)
    out = []
    findings = kind.findings(run)
    if findings:
        out.append('<section id="findings"><h2>Findings</h2>' + "".join(f"<p>{E(line)}</p>" for line in findings)
                   + "</section>")
    for title, headers, rows in kind.tables(run):
        head = "".join(f'<th class="{"text" if i == 0 else ""}">{E(h)}</th>' for i, h in enumerate(headers))
        body = "".join("<tr>" + "".join(f'<td class="{"text" if i == 0 else ""}" data-v="{E(c)}">{E(c)}</td>'
                                        for i, c in enumerate(row)) + "</tr>" for row in rows)
        out.append(f'<section><h2>{E(title)}</h2><table class="sortable"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{body}</tbody></table></section>")
    return "\n".join(out)


def _failures(run: RunRecord) -> str:
    failed = [v for v in run.variants if not v.ok]
    if not failed:
        return ""
    items = "".join(f'<li><b>{E(v.name)}</b>: <span class="bad">{E(v.error or "unknown")}</span></li>' for v in failed)
    return f'<section id="failures"><h2>Failed variants</h2><ul>{items}</ul></section>'


def _pareto(go, ok, colors, x_key, y_key, x_title, y_title, title, higher_better):
    points = [(v, flat.get(x_key), flat.get(y_key)) for v in ok for flat in (v.flat(),)]
    points = [(v, x, y) for v, x, y in points if isinstance(x, (int, float)) and isinstance(y, (int, float))]
    if not points:
        return None
    fig = go.Figure()
    for runtime, color in colors.items():
        for adaptive in (False, True):  # adaptive variants (cost decided per input) are marked: open diamonds
            mine = [(v, x, y) for v, x, y in points if v.runtime == runtime and v.adapts_per_input == adaptive]
            if not mine:
                continue
            # A few points are labelled with their pipeline (a workflow's arm, a pass preset); hover names all.
            labelled = len(points) <= 8 and any(v.pipeline for v, _, _ in mine)
            fig.add_trace(go.Scatter(
                x=[x for _, x, _ in mine], y=[y for _, _, y in mine], mode="markers+text" if labelled else "markers",
                name=E(runtime) + (" · adaptive" if adaptive else ""),
                marker={"size": 12 if adaptive else 11, "color": color,
                        "symbol": "diamond-open" if adaptive else "circle", "line": {"width": 2}},
                customdata=[E(v.name) for v, _, _ in mine],
                text=[E(v.pipeline or "") for v, _, _ in mine] if labelled else None, textposition="top center",
                cliponaxis=False,
                hovertemplate="%{customdata}<br>" + E(x_title) + ": %{x:.4g}<br>" + E(y_title) + ": %{y:.5g}<extra></extra>",
            ))
    front = pareto_front([(x, y) for _, x, y in points], higher_better)
    fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                             line={"dash": "dot", "color": "#888"}, hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=420, margin={"t": 50})
    return fig


def pareto_front(points: list[tuple[float, float]], higher_better: tuple[bool, bool]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes, sorted by x."""
    sign = [1 if h else -1 for h in higher_better]

    def dominates(p, q):
        return all(s * a >= s * b for s, a, b in zip(sign, p, q)) and p != q

    return sorted({p for p in points if not any(dominates(q, p) for q in points)})


def _percentiles(go, ok, colors):
    keys = [("latency_ms_p50", "p50"), ("latency_ms_p90", "p90"), ("latency_ms_p99", "p99"), ("latency_ms_p99_9", "p99.9")]
    rows = [v for v in ok if "single_stream" in v.scenarios]
    if not rows:
        return None
    fig = go.Figure()
    for v in rows:
        m = v.scenarios["single_stream"].metrics
        fig.add_trace(go.Scatter(x=[label for _, label in keys], y=[m.get(k) for k, _ in keys], mode="lines+markers",
                                 name=E(v.name), line={"color": colors[v.runtime]}))
    fig.update_layout(title="SingleStream latency percentiles", yaxis_title="latency (ms)", height=420, margin={"t": 50})
    return fig


def _cdf(go, ok, colors, samples):
    fig, drawn = go.Figure(), False
    for v in ok:
        values = samples.get((v.name, "single_stream"))
        if values is None or not len(values):
            continue
        x = np.sort(values)
        fig.add_trace(go.Scatter(x=x, y=np.arange(1, len(x) + 1) / len(x), mode="lines", name=E(v.name),
                                 line={"color": colors[v.runtime]}))
        drawn = True
    if not drawn:
        return None
    fig.update_layout(title="SingleStream latency CDF (every query)", xaxis_title="latency (ms)",
                      yaxis_title="fraction of queries", height=420, margin={"t": 50})
    return fig


def _throughput_by_batch(go, ok, colors, run):
    """Samples/s at the batch each scenario runs: 1 (SingleStream), N (MultiStream), batch_size (Offline)."""
    config = run.config
    per_query = config.get("loadgen", {}).get("multi_stream_samples_per_query", 8)
    batch = config.get("workload", {}).get("batch_size", 32)
    fig, drawn = go.Figure(), False
    for v in ok:
        points = []
        ss, ms, off = ((v.scenarios[n].metrics if n in v.scenarios else {})
                       for n in ("single_stream", "multi_stream", "offline"))
        if ss.get("throughput_sps"):
            points.append((1, ss["throughput_sps"]))
        if ms.get("latency_ms_mean"):
            points.append((per_query, per_query / ms["latency_ms_mean"] * 1e3))
        if off.get("throughput_sps"):
            points.append((batch, off["throughput_sps"]))
        if len(points) > 1:
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                     name=E(v.name), line={"color": colors[v.runtime]}))
            drawn = True
    if not drawn:
        return None
    fig.update_layout(title="Throughput vs batch size", xaxis_title="batch size (samples)", xaxis_type="log",
                      yaxis_title="samples/s", height=420, margin={"t": 50})
    return fig


def _server(go, ok, colors):
    rows = [(v, v.scenarios["server"].metrics) for v in ok if "server" in v.scenarios]
    rows = [(v, m) for v, m in rows if m.get("target_qps") and m.get("latency_ms_p99")]
    if not rows:
        return None
    fig = go.Figure()
    for runtime, color in colors.items():
        mine = [(v, m) for v, m in rows if v.runtime == runtime]
        if mine:
            fig.add_trace(go.Scatter(
                x=[m["target_qps"] for _, m in mine], y=[m["latency_ms_p99"] for _, m in mine], mode="markers",
                name=E(runtime), marker={"size": 11, "color": color}, text=[E(v.name) for v, _ in mine],
                hovertemplate="%{text}<br>QPS %{x:.3g}<br>p99 %{y:.3g} ms<extra></extra>"))
    bound = next((m.get("latency_bound_ms") for _, m in rows if m.get("latency_bound_ms")), None)
    if bound:
        fig.add_hline(y=bound, line_dash="dash", annotation_text="p99 bound")
    fig.update_layout(title="Server: QPS offered vs p99 latency", xaxis_title="QPS", yaxis_title="p99 latency (ms)",
                      height=420, margin={"t": 50})
    return fig


def _curve_points(v: VariantResult) -> list[LoadPoint]:
    """A serve-bench variant's load points (its session info), repetitions left out."""
    return [p for p in ServedInfo.of(v.session_info).points if not p.repeat and p.completed_qps is not None]


def _load_curves(go, ok: list[VariantResult]) -> list:
    """serve-bench's curves, one line per server configuration: p99 latency against the throughput achieved
    (Poisson rates solid, closed-loop levels dashed), and goodput against the offered rate."""
    served = [(v, _curve_points(v)) for v in ok]
    served = [(v, points) for v, points in served if points]
    if not served:
        return []
    slo = next((found for v, _ in served if (found := ServedInfo.of(v.session_info).slo)), None)
    latency, goodput = go.Figure(), go.Figure()
    any_goodput = False
    for i, (v, points) in enumerate(served):
        color = PALETTE[i % len(PALETTE)]
        for mode, dash, what in (("rate", "solid", "Poisson"), ("concurrency", "dash", "closed loop")):
            mine = sorted((p for p in points if p.mode == mode), key=lambda p: p.offered)
            if not mine:
                continue
            offered = [f"{p.offered:.4g} req/s" if mode == "rate" else f"{p.offered:.0f} in flight" for p in mine]
            latency.add_trace(go.Scatter(
                x=[p.completed_qps for p in mine], y=[p.latency_ms_p99 for p in mine], mode="lines+markers",
                name=E(f"{v.name} ({what})"), line={"color": color, "dash": dash},
                marker={"symbol": ["circle" if p.meets_slo else "x" for p in mine], "size": 9},
                text=offered, customdata=[p.slo_attainment_pct for p in mine],
                hovertemplate="%{text}<br>%{x:.4g} req/s done<br>p99 %{y:.3g} ms<br>attained %{customdata:.1f} %"
                              "<extra></extra>"))
        rates = sorted((p for p in points if p.mode == "rate" and p.goodput_qps is not None), key=lambda p: p.offered)
        if rates:
            any_goodput = True
            goodput.add_trace(go.Scatter(
                x=[p.offered for p in rates], y=[p.goodput_qps for p in rates], mode="lines+markers",
                name=E(v.name), line={"color": color}, customdata=[p.slo_attainment_pct for p in rates],
                marker={"symbol": ["circle" if p.meets_slo else "x" for p in rates], "size": 9},
                hovertemplate="offered %{x:.4g} req/s<br>goodput %{y:.4g} req/s<br>attained %{customdata:.1f} %"
                              "<extra></extra>"))
    bound = next((v.scenarios["server"].metrics.get("latency_bound_ms") for v, _ in served
                  if "server" in v.scenarios and v.scenarios["server"].metrics.get("latency_bound_ms")), None)
    if bound:
        latency.add_hline(y=bound, line_dash="dot", annotation_text="SLO bound")
    legend = {"orientation": "h", "yanchor": "top", "y": -0.22, "font": {"size": 10}}
    latency.update_layout(title="Latency vs throughput (× = missed the SLO)", xaxis_title="completed requests/s",
                          yaxis_title="p99 latency (ms)", height=560, margin={"t": 60}, legend=legend)
    top = max((p.offered for _, points in served for p in points if p.mode == "rate"), default=None)
    if top:
        goodput.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="every request good",
                                     line={"color": "#999", "dash": "dot"}, hoverinfo="skip"))
    goodput.update_layout(title={"text": "Goodput vs offered rate" + (f"<br><sup>SLO: {E(slo)}</sup>" if slo else "")},
                          xaxis_title="offered requests/s (Poisson)", yaxis_title="requests/s within the SLO",
                          height=560, margin={"t": 70}, legend=legend)
    return [latency, goodput if any_goodput else None]
