"""The terminal view of a run: a header, one leaderboard per scenario (best first), then failures."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import registry
from inferarena.scenarios.base import QUICK_NOTE

def render_run(run: dict, console: Console) -> None:
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
    ok = [v for v in run["variants"] if v["status"] == "ok"]
    if ok:
        console.print(variants_table(ok))
    for scenario in run["config"]["scenarios"]:
        console.print(leaderboard(scenario, ok, run["quick"]))
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


def leaderboard(scenario: str, variants: list[dict], quick: bool) -> Table:
    cls = registry.load(registry.SCENARIOS, scenario)
    mode = " · quick (not MLPerf-compliant)" if quick else ""
    table = Table(
        title=f"{cls.lg_scenario} — ranked by {cls.ranking}{mode}",
        title_justify="left",
        title_style="bold",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for header in ("#", "variant", *[h for _, h in cls.columns], "LoadGen", "cos min"):
        text = header in ("variant", "LoadGen")
        table.add_column(header, justify="left" if text else "right", no_wrap=True,
                         min_width=_widest(variants) if header == "variant" else None)

    reasons: list[str] = []  # INVALID reasons as numbered footnotes, so the table stays narrow
    rows = [v for v in variants if scenario in v["scenarios"]]
    for rank, v in enumerate(sorted(rows, key=lambda v: cls.rank_key(v["scenarios"][scenario]["metrics"])), 1):
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
            str(rank),
            escape(v["name"]),
            *[_fmt(metrics.get(k)) for k, _ in cls.columns],
            status,
            f"{v['fidelity']['cos_min']:.5f}" if v.get("fidelity") else "-",
        )
    if reasons:
        table.caption = "\n".join(f"INVALID:{i} {escape(r)}" for i, r in enumerate(reasons, 1))
    return table


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


