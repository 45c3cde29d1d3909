"""The terminal view of a run: a header, one leaderboard per scenario (best first), then failures."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import registry
from inferarena.errors import ConfigError
from inferarena.scenarios.base import QUICK_NOTE

# Shown in every scenario's table after its own columns: (metric key, header, scale).
EFFICIENCY = (("energy_j_per_query", "mJ/query", 1000.0), ("cost_usd_per_1m", "$/1M", 1.0), ("pct_of_peak", "% peak", 1.0))
# Metrics where more is better; everything else sorts ascending.
HIGHER_IS_BETTER = {"throughput_sps", "qps", "target_qps", "completed_qps", "gflops_per_s", "pct_of_peak"}


def sortable_metrics(run: dict) -> list[str]:
    """Numeric per-scenario metric keys present in this run: the choices of --sort."""
    keys = {k for v in run["variants"] for m in v["scenarios"].values()
            for k, value in m["metrics"].items() if isinstance(value, (int, float))}
    return sorted(keys)


def render_run(run: dict, console: Console, sort: str | None = None) -> None:
    if sort is not None and sort not in sortable_metrics(run):
        raise ConfigError(f"cannot sort by {sort!r}", f"choose one of: {', '.join(sortable_metrics(run))}")
    env = run["environment"]
    mode = QUICK_NOTE if run["quick"] else "MLPerf-compliant durations"
    workload = run["workload"]
    console.print(
        f"[bold]Run {run['run_id']}[/] · {escape(run['model'])} · {escape(env['cpu_model'])}, {env['logical_cores']} cores · "
        f"[yellow]{mode}[/]"
    )
    if workload.get("kind") == "text":
        console.print(
            f"Workload: {workload['samples']} texts from {escape(workload['source'])}, tokens p50 {workload['tokens_p50']:.0f} /"
            f" p90 {workload['tokens_p90']:.0f} / max {workload['tokens_max']} (fixed pads to {workload['max_length']})"
        )
    else:
        console.print(f"Workload: {workload['samples']} samples, {escape(workload['source'])}")
    for note in run["notes"]:
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
                      + " (% peak compares each variant with its precision's peak)")
    ok = [v for v in run["variants"] if v["status"] == "ok"]
    if ok:
        console.print(variants_table(ok))
    for scenario in run["config"]["scenarios"]:
        console.print(leaderboard(scenario, ok, run["quick"], sort))
    failed = [v for v in run["variants"] if v["status"] != "ok"]
    if failed:
        table = Table(title="Failed variants", title_style="bold red", expand=False)
        table.add_column("variant")
        table.add_column("error", overflow="fold")
        for v in failed:
            table.add_row(escape(v["name"]), escape(v["error"] or "unknown"))
        console.print(table)
    if run["status"] != "complete":
        console.print("[yellow]This run did not finish; rerun with the same options and --resume to complete it.[/]")


def variants_table(variants: list[dict]) -> Table:
    """What every variant is, how close it stays to the FP32 reference, and what it costs in memory."""
    table = Table(title="Variants — fidelity against the FP32 reference", title_justify="left", title_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("variant", "cos mean", "cos min", "max diff", "RSS MB", "load s"):
        table.add_column(header, justify="left" if header == "variant" else "right", no_wrap=True,
                         min_width=_widest(variants) if header == "variant" else None)
    for v in variants:
        f = v.get("fidelity") or {}
        table.add_row(escape(v["name"]), f"{f.get('cos_mean', float('nan')):.5f}",
                      f"{f.get('cos_min', float('nan')):.5f}", f"{f.get('max_abs_diff', float('nan')):.2g}",
                      _fmt((v.get("memory") or {}).get("peak_rss_mb")), _fmt(v.get("load_s")))
    return table


def leaderboard(scenario: str, variants: list[dict], quick: bool, sort: str | None = None) -> Table:
    cls = registry.load(registry.SCENARIOS, scenario)
    mode = " · quick (not MLPerf-compliant)" if quick else ""
    if sort:
        ranking = f"{sort}, {'highest' if sort in HIGHER_IS_BETTER else 'lowest'} first"

        def rank(metrics: dict) -> tuple:
            value = metrics.get(sort)
            if not isinstance(value, (int, float)) or math.isnan(value):
                return (1, 0.0)
            return (0, -value if sort in HIGHER_IS_BETTER else value)
    else:
        ranking, rank = cls.ranking, cls.rank_key
    sources = {v["scenarios"][scenario]["metrics"].get("energy_source") for v in variants if scenario in v["scenarios"]}
    energy_header = "mJ/query" + (" (est.)" if sources == {"estimate"} else "")
    table = Table(
        title=f"{cls.lg_scenario} — ranked by {ranking}{mode}",
        title_justify="left",
        title_style="bold",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    efficiency_headers = [energy_header if key == "energy_j_per_query" else h for key, h, _ in EFFICIENCY]
    for header in ("#", "variant", *[h for _, h in cls.columns], "LoadGen", "cos min", *efficiency_headers):
        text = header in ("variant", "LoadGen")
        table.add_column(header, justify="left" if text else "right", no_wrap=True,
                         min_width=_widest(variants) if header == "variant" else None)

    reasons: list[str] = []  # INVALID reasons as numbered footnotes, so the table stays narrow
    rows = [v for v in variants if scenario in v["scenarios"]]
    for position, v in enumerate(sorted(rows, key=lambda v: rank(v["scenarios"][scenario]["metrics"])), 1):
        measured = v["scenarios"][scenario]
        metrics = measured["metrics"]
        if measured["valid"]:
            status = "[green]VALID[/]"
        else:
            reason = measured["invalid_reason"] or "no reason given"
            if reason not in reasons:
                reasons.append(reason)
            status = f"[red]INVALID[/]:{reasons.index(reason) + 1}"
        table.add_row(
            str(position),
            escape(v["name"]),
            *[_fmt(metrics.get(k)) for k, _ in cls.columns],
            status,
            f"{v['fidelity']['cos_min']:.5f}" if v.get("fidelity") else "-",
            *[_fmt(metrics[k] * scale if isinstance(metrics.get(k), (int, float)) else None) for k, _, scale in EFFICIENCY],
        )
    if reasons:
        table.caption = "\n".join(f"INVALID:{i} {escape(r)}" for i, r in enumerate(reasons, 1))
    return table


def _first_metric(run: dict, key: str):
    return next((m["metrics"][key] for v in run["variants"] for m in v["scenarios"].values() if key in m["metrics"]), None)


def _widest(variants: list[dict]) -> int:
    return max((len(v["name"]) for v in variants), default=7)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


