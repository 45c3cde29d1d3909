"""The terminal view of a run: a header, one leaderboard per scenario (best first), then failures."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import registry
from inferarena.scenarios.base import QUICK_NOTE

# Columns per scenario: (metric key, header). Units are in the headers as in the keys.
COLUMNS = {
    "single_stream": [("latency_ms_p50", "p50 ms"), ("latency_ms_p90", "p90 ms"), ("latency_ms_p99", "p99 ms"),
                      ("qps", "queries/s")],
    "multi_stream": [("latency_ms_p50", "p50 ms"), ("latency_ms_p99", "p99 ms"), ("latency_ms_max", "max ms")],
    "server": [("target_qps", "target QPS"), ("completed_qps", "done QPS"), ("latency_ms_p50", "p50 ms"),
               ("latency_ms_p99", "p99 ms")],
    "offline": [("throughput_sps", "samples/s")],
}
TITLES = {"single_stream": "SingleStream", "multi_stream": "MultiStream", "server": "Server", "offline": "Offline"}


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


def leaderboard(scenario: str, variants: list[dict], quick: bool) -> Table:
    cls = registry.load(registry.SCENARIOS, scenario)
    metric, better = cls.metric, cls.higher_is_better
    unit = metric.replace("_", " ")
    mode = " · quick (not MLPerf-compliant)" if quick else ""
    table = Table(
        title=f"{TITLES.get(scenario, scenario)} — ranked by {unit}, {'highest' if better else 'lowest'} first{mode}",
        title_justify="left",
        title_style="bold",
    )
    for header in ("#", "runtime", "precision", "shape", *[h for _, h in COLUMNS.get(scenario, [])],
                   "LoadGen", "cos min", "peak RSS MB"):
        text = header in ("runtime", "precision", "shape", "LoadGen")
        table.add_column(header, justify="left" if text else "right", overflow="fold")

    def key(v: dict) -> float:
        value = v["scenarios"].get(scenario, {}).get("metrics", {}).get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        return -value if better else value

    rows = [v for v in variants if scenario in v["scenarios"]]
    for rank, v in enumerate(sorted(rows, key=key), 1):
        measured = v["scenarios"][scenario]
        metrics = measured["metrics"]
        status = "[green]VALID[/]" if measured["valid"] else f"[red]INVALID[/] {escape(_short(measured['invalid_reason']))}"
        table.add_row(
            str(rank),
            escape(v["runtime"] + "".join(f" +{knob}" for knob in v["name"].split("+")[1:])),
            v["precision"],
            v["shape"],
            *[_fmt(metrics.get(k)) for k, _ in COLUMNS.get(scenario, [])],
            status,
            f"{v['fidelity']['cos_min']:.5f}" if v.get("fidelity") else "-",
            _fmt((v.get("memory") or {}).get("peak_rss_mb")),
        )
    return table


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _short(reason: str | None, width: int = 40) -> str:
    reason = (reason or "").strip()
    return reason if len(reason) <= width else reason[: width - 1] + "…"
