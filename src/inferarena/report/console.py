"""The terminal view of a run: a header, one leaderboard per scenario (best first), then failures."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import kinds
from inferarena.kinds.base import Kind
from inferarena.report.json_export import describe_workload
from inferarena.report.leaderboard import NOISY_NOTE, ROUNDS_HEADER, board, check_sort, fmt, measured_scenarios
from inferarena.results import RunRecord, VariantResult
from inferarena.scenarios.base import QUICK_NOTE


def render_run(run: RunRecord, console: Console, sort: str | None = None) -> None:
    check_sort(run, sort)
    env = run.environment
    kind = kinds.of_run(run)
    mode = QUICK_NOTE if run.quick else "MLPerf-compliant durations"
    console.print(
        f"[bold]Run {run.run_id}[/] · {escape(run.model)} · {escape(env['cpu_model'])}, {env['logical_cores']} cores · "
        f"[yellow]{mode}[/]"
    )
    console.print(f"Workload: {escape(describe_workload(run.workload))}")
    for note in run.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    basis = _first_metric(run, "energy_basis")
    if basis:
        console.print(f"Energy: {escape(basis)}")
    if env.get("price"):
        console.print(f"Cost: {escape(env['price'])}")
    peaks = env.get("gemm_peak_gflops") or {}
    if peaks:
        console.print("GEMM peak here: " + ", ".join(f"{p} {g:,.0f} {'GOP/s' if p == 'int8' else 'GFLOP/s'}"
                                                     for p, g in peaks.items())
                      + " (useful %peak: the FLOPs of the unpadded inputs per second against the variant's precision's "
                      "peak; mJ/q is energy per query)")
    bandwidth = env.get("memory_bandwidth_gb_per_s")
    if bandwidth and bandwidth.get("read_gb_per_s"):
        console.print(f"Memory bandwidth here: read {bandwidth['read_gb_per_s']:.1f} GB/s, triad "
                      f"{bandwidth['triad_gb_per_s']:.1f} GB/s ({bandwidth['threads']} threads); %BW roofline = "
                      "decode tok/s × bytes read per token (weights + KV cache) ÷ the read bandwidth")
    ok = run.ok
    if ok:
        console.print(variants_table(ok, kind, env))
    noisy_pct = run.config.get("rounds", {}).get("noisy_spread_pct", 10.0)
    drift_pct = run.config.get("rounds", {}).get("drift_pct", 20.0)
    for scenario in measured_scenarios(run):
        console.print(leaderboard(scenario, ok, run.quick, sort, noisy_pct, drift_pct, kind.fidelity_key(ok)))
    failed = [v for v in run.variants if not v.ok]
    if failed:
        table = Table(title="Failed variants", title_style="bold red", expand=False)
        table.add_column("variant")
        table.add_column("error", overflow="fold")
        for v in failed:
            table.add_row(escape(v.name), escape(v.error or "unknown"))
        console.print(table)
    if run.status != "complete":
        console.print("[yellow]This run did not finish; rerun with the same options and --resume to complete it.[/]")


def variants_table(variants: list[VariantResult], kind: Kind, environment: dict) -> Table:
    """What every variant is, how close it stays to the FP32 reference (the kind's fidelity figures and
    the task metrics against the reference's scores), and what it costs in memory."""
    tasks = [t for t in environment.get("task_reference") or [] if "value" in t]
    reference = environment.get("generation_reference") or {}
    title = kind.fidelity_title + (f" ({reference['runtime']})" if reference.get("runtime") else "")
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = [c for c in kind.fidelity_columns
               if not c.optional or any(c.key in (v.fidelity or {}) for v in variants)]
    headers = [c.header + (f" (FP32 {fmt(reference.get(c.key))})" if c.key in reference else "") for c in columns]
    task_headers = [f"{t['name']}\n(FP32 {t['value']:.3f})" for t in tasks]
    for header in ("variant", *headers, *task_headers, "RSS MB", "load s", "passes (* cached)"):
        table.add_column(header, justify="left" if header in ("variant", "passes (* cached)") else "right",
                         no_wrap=header != "passes (* cached)", min_width=_widest(variants) if header == "variant" else None)
    for v in variants:
        f = v.fidelity or {}
        steps = ", ".join(p["pass"] + ("*" if p["cached"] else "") for p in v.passes)
        if v.kept_layers:
            steps += f"; {len(v.kept_layers)} layers kept FP32"
        scores = {t["name"]: t.get("value") for t in v.task}
        table.add_row(escape(v.name), *(_cell(f, c) for c in columns),
                      *(f"{scores[t['name']]:.3f}" if scores.get(t["name"]) is not None else "-" for t in tasks),
                      fmt((v.memory or {}).get("peak_rss_mb")), fmt(v.load_s), escape(steps or "-"))
    return table


def _cell(fidelity: dict, column) -> str:
    value = fidelity.get(column.key)
    if column.of is not None:
        return f"{fmt(value)}/{fidelity.get(column.of, '?')}"
    if column.fmt:
        return f"{float('nan') if value is None else value:{column.fmt}}" if not column.optional or value is not None else "-"
    return fmt(value)


def leaderboard(scenario: str, variants: list[VariantResult], quick: bool, sort: str | None = None,
                noisy_pct: float = 10.0, drift_pct: float = 20.0, fidelity: tuple[str, str] = ("cos_min", "cos min")) -> Table:
    data = board(scenario, variants, quick, sort, noisy_pct, fidelity)
    table = Table(title=data.title, title_justify="left", title_style="bold", caption_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("#", "variant", *data.headers):
        text = header in ("variant", "LoadGen")
        table.add_column(header, justify="left" if text else "right", no_wrap=True,
                         min_width=_widest(variants) if header == "variant" else (len(str(len(data.rows))) if
                                                                                  header == "#" else None))
    reasons: list[str] = []  # INVALID reasons as numbered footnotes, so the table stays narrow
    status_at = data.headers.index("LoadGen")
    for position, (v, cells, valid, reason) in enumerate(data.rows, 1):
        if valid:
            status = "[green]VALID[/]"
        else:
            reason = reason or "no reason given"
            if reason not in reasons:
                reasons.append(reason)
            status = f"[red]INVALID[/]:{reasons.index(reason) + 1}"
        table.add_row(str(position), escape(v.name), *cells[:status_at], status, *cells[status_at:])
    captions = [f"INVALID:{i} {escape(r)}" for i, r in enumerate(reasons, 1)]
    if ROUNDS_HEADER in data.headers and any("!)" in cells[-1] for _, cells, _, _ in data.rows):
        captions.append(NOISY_NOTE.format(pct=noisy_pct))
    if ROUNDS_HEADER in data.headers and any(" ±" in cells[-1] for _, cells, _, _ in data.rows):
        captions.append("±CI: half the width of the ranking figure's 95% CI over all rounds, in % "
                        "(--ci-target-pct measures until it is below a target)")
    drifted = [(v.name, v.scenarios[scenario].metrics["drift_pct"]) for v, _, _, _ in data.rows
               if abs(v.scenarios[scenario].metrics.get("drift_pct") or 0.0) > drift_pct]
    if drifted:
        captions.append("~ latency drifted within a round (median of the second half vs the first): "
                        + ", ".join(f"{escape(n)} {d:+.0f}%" for n, d in drifted) + "; such variants get an extra round")
    table.caption = "\n".join(captions) or None
    return table


def _first_metric(run: RunRecord, key: str):
    return next((m.metrics[key] for v in run.variants for m in v.scenarios.values() if key in m.metrics), None)


def _widest(variants: list[VariantResult]) -> int:
    return max((len(v.name) for v in variants), default=7)


def render_recommendation(rec, run: RunRecord, console: Console) -> None:
    """The Pareto front as a table (on the kind's axes), then the pick and its reasons in a panel."""
    from rich.panel import Panel

    kind = kinds.of_run(run)
    columns = kind.pareto_columns
    by_name = {v.name: v.flat() for v in run.variants}
    title = kind.pareto_title
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("variant", *(c.label for c in columns), "RSS MB"):
        table.add_column(header, justify="left" if header == "variant" else "right", no_wrap=True)
    for name in rec.pareto:
        m = by_name[name]
        cells = [f"{m[c.key]:{c.fmt}}" if c.fmt and c.key in m else fmt(m.get(c.key)) for c in columns]
        table.add_row(("[bold]" if name == rec.variant else "") + escape(name), *cells,
                      fmt(m.get("memory.peak_rss_mb")))
    if rec.pareto:
        console.print(table)
    title = f"Recommendation · profile {rec.profile}" + ("" if rec.met else " · constraints not met")
    console.print(Panel(escape(rec.explanation), title=title, title_align="left",
                        border_style="green" if rec.met else "red", width=min(console.width, 120)))
