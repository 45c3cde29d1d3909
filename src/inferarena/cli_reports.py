"""Commands that read the history: report (HTML, Markdown, CSV, JSON) and compare."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from inferarena.cli_common import (
    DEFAULT_DB,
    DbOption,
    DebugOption,
    MaxMemoryOption,
    MaxP99Option,
    MinCosOption,
    MinThroughputOption,
    ProfileOption,
    SortOption,
    app,
    bounds,
    console,
    errors,
    open_db,
    require_db,
    user_errors,
)
from inferarena.errors import InferarenaError


class ReportFormat(str, Enum):
    html = "html"
    md = "md"
    csv = "csv"
    json = "json"


@app.command()
def report(
    run_id: Annotated[int, typer.Argument(help="Run number, as listed by `inferarena results`.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="File to write. Default: "
                      "inferarena-run-N.<format> next to the DB.")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="html: self-contained page with plots "
                      "(works offline); md: Markdown for a pull request; csv: one row per variant; json.")] = ReportFormat.html,
    db: DbOption = DEFAULT_DB,
    sort: SortOption = None,
    debug: DebugOption = False,
) -> None:
    """Write a run as a report: HTML with plots, Markdown, CSV or JSON."""
    with user_errors(debug):
        require_db(db)
        path = write_report(open_db(db), run_id, format.value, output or report_path(db, run_id, format.value), sort)
    console.print(f"Report written to {escape(str(path))}")


def report_path(db: Path, run_id: int, suffix: str) -> Path:
    return db.resolve().parent / f"inferarena-run-{run_id}.{suffix}"


def write_report(store, run_id: int, fmt: str, path: Path, sort: Optional[str] = None) -> Path:
    from inferarena.report import html as html_report
    from inferarena.report import json_export, markdown
    from inferarena.report.leaderboard import check_sort

    stored = store.load_run(run_id)
    if stored is None:
        raise InferarenaError(f"run {run_id} is not in {store.label}", "list the runs with `inferarena results`")
    check_sort(stored, sort)
    rec = recommendation_of(store, stored, path.parent)
    if fmt == "html":
        text = html_report.render(stored, store.load_samples(run_id), rec)
    elif fmt == "md":
        text = markdown.to_markdown(stored, sort)
    elif fmt == "csv":
        text = markdown.to_csv(stored)
    else:
        text = json.dumps(json_export.to_document(stored, rec), indent=2)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InferarenaError(f"cannot write {path} ({exc.strerror})", "pass a writable path with -o") from None
    return path


@app.command()
def compare(
    run_a: Annotated[int, typer.Argument(help="The baseline run.")],
    run_b: Annotated[int, typer.Argument(help="The run to judge against it.")],
    db: DbOption = DEFAULT_DB,
    fail_on: Annotated[Optional[str], typer.Option(
        help="Exit with code 3 when a metric regresses significantly beyond a limit, e.g. 'p99:+5%,throughput:-5%'. "
        "Metrics: p50, p90, p99 (latency, higher is worse), throughput (Offline, lower is worse).")] = None,
    tie_margin: Annotated[float, typer.Option(
        help="Changes smaller than this fraction are called a tie even when significant. The CI covers the noise "
        "within each process and, with rounds, between processes; what a whole machine drifts between runs it "
        "cannot see, hence a margin (10% suits a shared 2-core VM).")] = 0.10,
    debug: DebugOption = False,
) -> None:
    """Compare two runs variant by variant on their raw samples: change, 95% CI, verdict.

    Latency percentiles: bootstrap CI of the relative change, plus Mann-Whitney U on the latencies.
    Offline throughput: bootstrap over batches. Exit codes: 0 no regression, 2 bad input,
    3 a --fail-on rule was broken (for CI gates).
    """
    from inferarena.report import compare as comparing

    with user_errors(debug):
        require_db(db)
        store = open_db(db)
        runs = {rid: store.load_run(rid) for rid in (run_a, run_b)}
        missing = [rid for rid, r in runs.items() if r is None]
        if missing:
            raise InferarenaError(f"run {missing[0]} is not in {db}", "list the runs with `inferarena results`")
        rules = comparing.parse_fail_on(fail_on) if fail_on else {}
        rows, notes = comparing.compare(runs[run_a], runs[run_b], store.load_sample_rounds(run_a), store.load_sample_rounds(run_b),
                                        tie_margin)
    for note in notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    table = Table(title=f"Run {run_b} against run {run_a} (tie margin {tie_margin:.0%})", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("variant", "metric", f"run {run_a}", f"run {run_b}", "change", "95% CI", "p (MWU)", "verdict"):
        table.add_column(header, justify="left" if header in ("variant", "metric", "verdict") else "right",
                         no_wrap=True)
    colors = {"better": "green", "worse": "red", "tie": "dim"}
    for row in rows:
        c = row.change
        unit = "samples/s" if row.metric == "throughput" else "ms"
        table.add_row(escape(row.variant), f"{row.scenario} {row.metric} {unit}", f"{c.a:.4g}", f"{c.b:.4g}",
                      f"{c.rel:+.1%}", f"{c.ci_low:+.0%}..{c.ci_high:+.0%}",
                      "-" if c.p_value is None else f"{c.p_value:.3g}", f"[{colors[row.verdict]}]{row.verdict}[/]")
    console.print(table if rows else "No variant was measured in both runs with raw samples.")
    counts = {v: sum(r.verdict == v for r in rows) for v in ("better", "worse", "tie")}
    console.print(f"{counts['better']} better, {counts['worse']} worse, {counts['tie']} tie")
    failed = comparing.regressions(rows, rules)
    if failed:
        for row in failed:
            errors.print(f"[bold red]regression:[/] {escape(row.variant)} {row.scenario} {row.metric} "
                         f"{row.change.rel:+.1%} (CI {row.change.ci_low:+.1%} .. {row.change.ci_high:+.1%}) "
                         f"breaks --fail-on {row.metric}:{rules[row.metric]:+.0%}")
        raise typer.Exit(comparing.REGRESSION_EXIT_CODE)




@app.command()
def recommend(
    run_id: Annotated[int, typer.Argument(help="Run number, as listed by `inferarena results`.")],
    profile: ProfileOption = "latency",
    max_p99_ms: MaxP99Option = None,
    min_cos: MinCosOption = None,
    min_throughput: MinThroughputOption = None,
    max_memory_mb: MaxMemoryOption = None,
    hardware: Annotated[Optional[str], typer.Option(help=(
        "Pick among the variants measured on this hardware class (as `show` lists them, e.g. 'Xeon · 8 cores'; "
        "a part of it is enough). Default: the class holding the most variants; others are never ranked against it."))] = None,
    db: DbOption = DEFAULT_DB,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the run and the pick as JSON.")] = None,
    debug: DebugOption = False,
) -> None:
    """Pick the variant to deploy for a profile, under constraints, and say why (with 95% CIs).

    Example: inferarena recommend 1 --profile latency --max-p99-ms 5 --min-cos 0.99
    Writes a config that measures the pick again (inferarena-run-N-PROFILE.yaml next to the DB).
    """
    with user_errors(debug):
        require_db(db)
        store = open_db(db)
        constraints = bounds(max_p99_ms, min_cos, min_throughput, max_memory_mb)
        run, rec = recommend_run(store, run_id, profile, constraints, db.resolve().parent, hardware)
        serving = serving_of(store, run, rec)
    show_recommendation(run, rec, json_path, serving)
    if not rec.met:
        raise typer.Exit(1)


def recommend_run(store, run_id: int, profile: Optional[str], constraints: dict, config_dir: Path,
                  hardware: Optional[str] = None):
    from inferarena import kinds
    from inferarena.recommend import recommend as pick

    run = store.load_run(run_id)
    if run is None:
        raise InferarenaError(f"run {run_id} is not in {store.label}", "list the runs with `inferarena results`")
    profiles = kinds.of_run(run).profiles
    if profile not in profiles:
        raise InferarenaError(f"unknown profile {profile!r}", f"choose one of: {', '.join(profiles)}")
    return run, pick(run, store.load_sample_rounds(run_id), profile, constraints, config_dir, hardware)


def serving_of(store, run, rec):
    """The server configuration serve-bench found best for the run's model, when one was measured and the
    pick is a model that serve-bench serves (tensors)."""
    from inferarena.serving import choice

    if rec.variant is None or run.config.get("kind") == "serve-bench":
        return None
    return choice.latest(store, run.model)


def show_recommendation(run, rec, json_path: Optional[Path], serving=None) -> None:
    from dataclasses import asdict

    from inferarena.report import json_export
    from inferarena.report.console import render_recommendation

    render_recommendation(rec, run, console)
    if serving is not None:
        console.print(f"Serve it with: {escape(serving.sentence())}. "
                      f"`inferarena deploy {run.run_id} --target {serving.server}` writes that batching.")
    if json_path:
        json_export.write(run, json_path, rec, asdict(serving) if serving else None)
        console.print(f"JSON written to {escape(str(json_path))}")


def recommendation_of(store, run, config_dir: Path):
    """The run's pick when it was run with --profile (None otherwise)."""
    from inferarena.recommend import recommend as pick

    profile = run.config.get("profile")
    if not profile:
        return None
    return pick(run, store.load_sample_rounds(run.run_id), profile, run.config.get("constraints") or {}, config_dir)
