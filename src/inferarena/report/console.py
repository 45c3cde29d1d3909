"""The terminal view of a run: a header, one leaderboard per scenario (best first), then failures."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import kinds
from inferarena.hardware import MemoryBandwidth, by_class, hardware_class
from inferarena.kinds.base import Kind
from inferarena.report.fit import Col, print_table
from inferarena.report.json_export import describe_workload
from inferarena.report.leaderboard import LEGEND, NOISY_NOTE, board, check_sort, fmt, measured_scenarios
from inferarena.results import RunRecord, TaskScore, VariantResult, metric


def render_run(run: RunRecord, console: Console, sort: str | None = None, wide: bool = False) -> None:
    """`wide`: every table whole, however wide (`show --wide`); otherwise the columns that do not fit
    the console move to a second table."""
    check_sort(run, sort)
    env = run.environment
    kind = kinds.of_run(run)
    mode = kinds.of_run(run).mode(run.quick)
    console.print(
        f"[bold]Run {run.run_id}[/] · {escape(run.model)} · {escape(env['cpu_model'])}, {env['logical_cores']} cores · "
        f"[yellow]{mode}[/]"
    )
    console.print(f"Workload: {escape(describe_workload(run.workload))}")
    if env.get("device", "cpu") != "cpu":
        gpus = env.get("gpus") or [{}]
        console.print(f"Device: {escape(env['device'])} · " + "; ".join(
            escape(f"{g.get('name')}, {g.get('memory_gb')} GB, driver {g.get('driver')}, CUDA {g.get('cuda_version')}")
            for g in gpus))
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
                                                     for p, g in peaks.items()))
    bandwidth = MemoryBandwidth.of(env.get("memory_bandwidth_gb_per_s"))
    if bandwidth:
        console.print(f"Memory bandwidth here: read {bandwidth.read_gb_per_s:.1f} GB/s, triad "
                      f"{bandwidth.triad_gb_per_s:.1f} GB/s ({bandwidth.threads} threads); %BW roofline = "
                      "decode tok/s × bytes read per token (weights + KV cache) ÷ the read bandwidth")
    console.print()
    ok = run.ok
    if ok:
        variants_table(console, ok, kind, env, wide)
        adaptive_table(console, ok, wide)
    noisy_pct = run.config.get("rounds", {}).get("noisy_spread_pct", 10.0)
    drift_pct = run.config.get("rounds", {}).get("drift_pct", 20.0)
    explained: set[str] = set()  # headers whose legend was printed under an earlier table
    classes = by_class(ok)
    if len(classes) > 1 or (env.get("launcher") or env.get("executor")) == "ray":
        nodes_table(console, run.variants, wide)
    for hardware, members in classes.items():
        if len(classes) > 1:  # figures from different machines are not ranked against each other
            console.print(f"[bold]On {escape(hardware)}[/] · {len(members)} of {len(ok)} variants, ranked only "
                          "against each other (other hardware classes have their own leaderboards)")
        for scenario in measured_scenarios(run):
            if any(scenario in v.scenarios for v in members):
                leaderboard(console, scenario, members, run.quick, sort, noisy_pct, drift_pct,
                            kind.fidelity_key(members), wide, explained)
    for title, headers, rows in kind.tables(run):
        cols = [Col(escape(h), [escape(r[i]) for r in rows], "left" if i == 0 else "right", key=i == 0)
                for i, h in enumerate(headers)]
        print_table(console, escape(title), cols, wide=wide)
    for line in kind.findings(run):
        console.print(escape(line))
    failed = [v for v in run.variants if not v.ok]
    if failed:
        table = Table(title="Failed variants", title_style="bold red", title_justify="left", expand=False,
                      box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("variant", no_wrap=True)
        table.add_column("error", overflow="fold")
        for v in failed:
            table.add_row(escape(v.name), escape(v.error or "unknown"))
        console.print(table)
    if run.status != "complete":
        console.print("[yellow]This run did not finish; rerun with the same options and --resume to complete it.[/]")


def nodes_table(console: Console, variants: list[VariantResult], wide: bool = False) -> None:
    """Where each variant was measured: the machine (hostname, the cluster's node id) and its hardware class."""
    cols = [Col("variant", [escape(v.name) for v in variants], "left", key=True),
            Col("node", [escape((v.node or {}).get("hostname") or "-") for v in variants], "left"),
            Col("node id", [escape(((v.node or {}).get("node_id") or "-")[:12]) for v in variants], "left"),
            Col("hardware class", [escape(hardware_class(v.node)) for v in variants], "left")]
    print_table(console, "Where each variant ran", cols, wide=wide)


def variants_table(console: Console, variants: list[VariantResult], kind: Kind, environment: dict,
                   wide: bool = False) -> None:
    """What every variant is, how close it stays to the FP32 reference (the kind's fidelity figures and
    the task metrics against the reference's scores), and what it costs in memory."""
    tasks = [t for t in map(TaskScore.of, environment.get("task_reference") or []) if t.value is not None]
    reference = environment.get("generation_reference") or {}
    title = kind.fidelity_title + (f" ({reference['runtime']})" if reference.get("runtime") else "")
    columns = [c for c in kind.fidelity_columns
               if not c.optional or any(c.key in kind.fidelity_of(v) for v in variants)]
    cols = [Col("variant", [escape(v.name) for v in variants], "left", key=True)]
    for c in columns:
        header = c.header + (f"\n(FP32 {fmt(reference.get(c.key))})" if c.key in reference else "")
        cols.append(Col(header, [_cell(kind.fidelity_of(v), c) for v in variants]))
    for t in tasks:
        scores = [next((s.value for s in v.task if s.name == t.name), None) for v in variants]
        cols.append(Col(f"{escape(t.name)}\n(FP32 {t.value:.3f})",
                        [f"{s:.3f}" if s is not None else "-" for s in scores]))
    cols.append(Col("RSS MB", [fmt((v.memory or {}).get("peak_rss_mb")) for v in variants]))
    cols.append(Col("load s", [fmt(v.load_s) for v in variants]))
    steps = []
    for v in variants:
        text = ", ".join(p.name + ("*" if p.cached else "") for p in v.passes)
        if v.kept_layers:
            text += f"; {len(v.kept_layers)} layers kept FP32"
        steps.append(escape(text or "-"))
    cols.append(Col("passes (* cached)", steps, "left"))
    print_table(console, escape(title), cols, wide=wide)


# The adaptive.* figures a table shows, in this order, when some variant has them (the histogram stays in the JSON).
ADAPTIVE_SHOWN = ("method", "layers_mean", "layers_p90", "early_exit_ratio", "tokens_kept_ratio", "ffn_kept_ratio",
                  "active_params_ratio", "acceptance_rate", "draft_tokens_per_step", "tokens_per_step",
                  "controller_ms", "inputs")


def adaptive_table(console: Console, variants: list[VariantResult], wide: bool = False) -> None:
    """What each adaptive variant decided per input, on the fidelity inputs: depth, tokens or FFN neurons
    kept, drafts accepted, and the controller's own time."""
    rows = [v for v in variants if v.adaptive]
    if not rows:
        return
    keys = [k for k in ADAPTIVE_SHOWN if any(v.adaptive.get(k) is not None for v in rows)]
    cols = [Col("variant", [escape(v.name) for v in rows], "left", key=True)]
    for key in keys:
        m = metric(key)
        header = (m.label if m else key) + (f" ({m.unit})" if m and m.unit == "ms" else "")
        cols.append(Col(escape(header), [escape(fmt(v.adaptive.get(key))) for v in rows],
                        "left" if key == "method" else "right"))
    print_table(console, "Adaptive variants — what each decided per input (fidelity inputs)", cols, wide=wide)


def _cell(fidelity: dict, column) -> str:
    value = fidelity.get(column.key)
    if column.of is not None:
        return f"{fmt(value)}/{fidelity.get(column.of, '?')}"
    if column.fmt:
        return f"{float('nan') if value is None else value:{column.fmt}}" if not column.optional or value is not None else "-"
    return fmt(value)


def leaderboard(console: Console, scenario: str, variants: list[VariantResult], quick: bool, sort: str | None = None,
                noisy_pct: float = 10.0, drift_pct: float = 20.0, fidelity: tuple[str, str] = ("cos_min", "cos min"),
                wide: bool = False, explained: set[str] | None = None) -> None:
    """One scenario's ranking, best first: its figures, then LoadGen's verdict, fidelity, efficiency
    and rounds; INVALID reasons, noise and drift as numbered notes under it, then a legend of the
    compact headers."""
    data = board(scenario, variants, quick, sort, noisy_pct, fidelity)
    reasons: list[str] = []  # INVALID reasons as numbered footnotes, so the table stays narrow
    statuses = []
    for v, cells, valid, reason in data.rows:
        if valid:
            statuses.append("[green]VALID[/]")
        else:
            reason = reason or "no reason given"
            if reason not in reasons:
                reasons.append(reason)
            statuses.append(f"[red]INVALID[/]:{reasons.index(reason) + 1}")
    # The board's cells leave out the status; it goes back in under its header.
    by_column = [list(column) for column in zip(*(cells for _, cells, _, _ in data.rows))]
    if "LoadGen" in data.headers:
        by_column.insert(data.headers.index("LoadGen"), statuses)
    cols = [Col("#", [str(i) for i in range(1, len(data.rows) + 1)], key=True),
            Col("variant", [escape(v.name) for v, _, _, _ in data.rows], "left", key=True),
            *(Col(h, c, "left" if h == "LoadGen" else "right") for h, c in zip(data.headers, by_column))]
    notes = [f"INVALID:{i} {escape(r)}" for i, r in enumerate(reasons, 1)]
    spreads = [v.scenarios[scenario].metrics.get("round_spread_pct") for v, _, _, _ in data.rows]
    if any(s is not None and s > noisy_pct for s in spreads):
        notes.append(escape(NOISY_NOTE.format(pct=noisy_pct)))
    drifted = [(v.name, v.scenarios[scenario].metrics["drift_pct"]) for v, _, _, _ in data.rows
               if abs(v.scenarios[scenario].metrics.get("drift_pct") or 0.0) > drift_pct]
    if drifted:
        notes.append("~ latency drifted within a round (median of the second half vs the first): "
                     + ", ".join(f"{escape(n)} {d:+.0f}%" for n, d in drifted) + "; such variants get an extra round")
    explained = set() if explained is None else explained
    legend = [f"{escape(h)}: {LEGEND[h]}" for h in data.headers if h in LEGEND and h not in explained]
    explained.update(data.headers)
    if legend:
        notes.append("[dim]" + " · ".join(legend) + "[/]")
    print_table(console, escape(data.title), cols, notes, wide)


def _first_metric(run: RunRecord, key: str):
    return next((m.metrics[key] for v in run.variants for m in v.scenarios.values() if key in m.metrics), None)


def render_recommendation(rec, run: RunRecord, console: Console, wide: bool = False) -> None:
    """The Pareto front as a table (on the kind's axes), then the pick and its reasons in a panel."""
    from rich.panel import Panel

    kind = kinds.of_run(run)
    columns = kind.pareto_columns
    by_name = {v.name: v.flat() for v in run.variants}
    if rec.pareto:
        rows = [by_name[name] for name in rec.pareto]
        cols = [Col("variant", [("[bold]" if name == rec.variant else "") + escape(name) for name in rec.pareto],
                    "left", key=True)]
        cols += [Col(c.label, [f"{m[c.key]:{c.fmt}}" if c.fmt and c.key in m else fmt(m.get(c.key)) for m in rows])
                 for c in columns]
        cols.append(Col("RSS MB", [fmt(m.get("memory.peak_rss_mb")) for m in rows]))
        print_table(console, escape(kind.pareto_title), cols, wide=wide)
    if len(rec.finalists) > 1:  # a search's confirmation, measured interleaved: what the pick was chosen on
        cis = [f["ci"] for f in rec.finalists]
        cols = [Col("finalist", [("[bold]" if f["name"] == rec.variant else "") + escape(f["name"]) for f in rec.finalists],
                    "left", key=True),
                Col("precision", [f["precision"] for f in rec.finalists], "left"),
                Col(escape(rec.metric), [fmt(f["value"]) for f in rec.finalists]),
                Col("95% CI", ["-" if ci is None else f"{fmt(ci[0])} – {fmt(ci[1])}" for ci in cis]),
                Col("rounds", [str(f["rounds"]) for f in rec.finalists])]
        print_table(console, "Finalists, confirmed side by side (the best of each runtime × precision)", cols, wide=wide)
    title = f"Recommendation · profile {escape(rec.profile)}" + ("" if rec.met else " · constraints not met")
    console.print(Panel(escape(rec.explanation), title=title, title_align="left",
                        border_style="green" if rec.met else "red", width=min(console.width, 120)))
