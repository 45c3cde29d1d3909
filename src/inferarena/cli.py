"""The `inferarena` command line. Every option carries its help; choices come from the registries."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferarena import registry
from inferarena.cli_common import (
    DEFAULT_CACHE,
    DEFAULT_DB,
    CiTargetOption,
    DbOption,
    DebugOption,
    DeviceOption,
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
    progress_bar,
    require_db,
    split_values,
    user_errors,
)
from inferarena.errors import InferarenaError
from inferarena.fsutil import private_dir
from inferarena.passes.presets import PRESETS

DryRunOption = Annotated[bool, typer.Option("--dry-run", help=(
    "Check the config, the model and the inputs, print what would be measured, and stop: nothing is "
    "built, measured or stored."))]
LauncherOption = Annotated[str, typer.Option("--launcher", "--executor", help=(
    "What runs the builds and measurement rounds: spawn (a fresh process each, on this machine) or ray (Ray tasks "
    "on a cluster, each measurement holding a whole node, variants measured in parallel, one per node; the "
    "cache folder and the DB's folder must be shared by the nodes). Needs the ray extra. --executor is its old name."))]
RayAddressOption = Annotated[Optional[str], typer.Option("--ray-address", help=(
    "With --launcher ray: the cluster to join (HOST:PORT of its head, or auto). Default: start Ray on this "
    "machine for this run, on loopback, and stop it at the end."))]
SweepDebugOption = Annotated[bool, typer.Option("--debug", help=(
    "Show the full traceback when something fails, and run every build and measurement in this process (the "
    "inline launcher), so a traceback or a breakpoint lands in the job itself; no timeouts, no crash isolation, "
    "and memory figures then include this process."))]


@app.command()
def run(
    model: Annotated[Optional[str], typer.Option(
        help="Bundled model name (minilm, efficientnet-lite0, smollm2), a Hugging Face folder, or a model file: "
        ".onnx, .xml (OpenVINO IR), .tflite, .keras, .gguf, or a SavedModel folder. [default: minilm]")] = None,
    inputs: Annotated[Optional[Path], typer.Option(
        help="Inputs: FILE.txt/.jsonl (one text a line) for text models, FILE.npz (one array per input, first "
        "axis = samples) for tensor models. Default: stdlib docstrings, or inputs generated from the graph.")] = None,
    config: Annotated[Optional[Path], typer.Option(
        help="YAML run config (the `config` block stored with every run); options given here override it.")] = None,
    runtimes: Annotated[Optional[list[str]], typer.Option(
        help=f"Runtimes to measure, repeated or comma-separated: {', '.join(registry.RUNTIMES)}. "
        "Default: every installed one.")] = None,
    scenarios: Annotated[Optional[list[str]], typer.Option(
        help=f"LoadGen scenarios, repeated or comma-separated: {', '.join(registry.SCENARIOS)}. Default: all.")] = None,
    pipelines: Annotated[Optional[list[str]], typer.Option(
        help=f"Optimization pipelines to add as variants, repeated or comma-separated: {', '.join(PRESETS)} "
        "(-ac: accuracy-controlled, cos_min >= 0.99), or none. Custom pipelines go in --config. "
        "Default: the model's own (MiniLM: int8-dynamic-ac on onnxruntime, nncf-int8 on openvino; "
        "efficientnet-lite0: nncf-int8 on openvino, tflite-int8 on litert). With --min-cos, each INT8 recipe "
        "becomes its -ac twin with that bound as its budget.")] = None,
    shapes: Annotated[Optional[list[str]], typer.Option(
        help="Shape strategies: fixed (pad to workload.max_length, 128 by default), dynamic (pad to each batch's "
        "longest), bucketed (pad to the next of a few lengths from the workload's length quantiles). "
        "Default: fixed,dynamic.")] = None,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Short durations for a demo or test (seconds, not MLPerf's 10 minutes); marked "
        "'quick (not MLPerf-compliant)' everywhere.")] = False,
    prompts: Annotated[Optional[str], typer.Option(
        help="Language models: what the prompts ask. continue: a corpus excerpt to continue; grounded: a passage "
        "and an instruction to repeat it (copy-heavy, as retrieval-augmented answers are). [default: continue]")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Threads per runtime. Default: all cores.")] = None,
    device: DeviceOption = None,
    db: DbOption = DEFAULT_DB,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the run as JSON to this file.")] = None,
    report_html: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write the HTML report next to the DB (inferarena-run-N.html).")] = True,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the latest unfinished run with the same config, measuring only what is missing.")] = False,
    cache_dir: Annotated[Path, typer.Option(help="Cache for converted models and GEMM peaks.")] = DEFAULT_CACHE,
    sort: SortOption = None,
    profile: ProfileOption = None,
    max_p99_ms: MaxP99Option = None,
    min_cos: MinCosOption = None,
    min_throughput: MinThroughputOption = None,
    max_memory_mb: MaxMemoryOption = None,
    ci_target_pct: CiTargetOption = None,
    dry_run: DryRunOption = False,
    launcher: LauncherOption = "spawn",
    ray_address: RayAddressOption = None,
    debug: SweepDebugOption = False,
) -> None:
    """Measure a model on every runtime and scenario, print leaderboards, and store the run.

    With --profile, it ends with the variant to deploy for that priority, its 95% CIs and the reasons.

    Example: inferarena run --quick --runtimes onnxruntime,openvino --scenarios single_stream,offline
    """
    from inferarena import arena

    with user_errors(debug):
        cfg = _run_config(config, model, quick, threads, profile, scenarios, runtimes, pipelines, inputs, shapes,
                          bounds(max_p99_ms, min_cos, min_throughput, max_memory_mb),
                          {"rounds": {"ci_target_pct": ci_target_pct}, "generation": {"prompts": prompts}}, device)
        if dry_run:
            return _dry_run(cfg)
        _sweep(arena.run, cfg, db, cache_dir, resume, json_path, report_html, sort, debug, _left_out(cfg),
               _launcher_options(launcher, ray_address, debug))


def _left_out(cfg) -> str | None:
    """What the default sweep measures that this run does not: scenarios and shapes. (Runtimes that are
    not installed are already named in the run's own notes, for the ones that could load the model.)"""
    from inferarena.config import RunConfig, WorkloadConfig

    parts = []
    scenarios = [s for s in RunConfig.model_fields["scenarios"].default_factory() if s not in cfg.scenarios]
    if scenarios:
        parts.append(f"scenarios {', '.join(scenarios)}")
    shapes = [s.value for s in WorkloadConfig.model_fields["shapes"].default_factory() if s not in cfg.workload.shapes]
    if shapes:
        parts.append(f"{', '.join(shapes)} shapes")
    if not parts:
        return None
    return ("Not in this run: " + "; ".join(parts) + ". Drop --scenarios and --shapes to measure them; "
            "`inferarena search` also tunes batch size, threads and streams.")


def _dry_run(cfg, judged_by: str | None = None) -> None:
    """Print what a sweep would measure: the model, its inputs, the variants (or a search's space)."""
    from inferarena import arena

    planned = arena.preview(cfg, judged_by)
    described = planned.workload.describe()
    name = planned.artifact.meta.get("name", cfg.model)
    console.print(f"Dry run: {escape(str(name))} ({planned.kind.name}), {len(planned.workload)} inputs "
                  f"({escape(str(described.get('source', 'generated')))}); scenarios "
                  f"{', '.join(planned.config.scenarios)}; device {planned.device}")
    from inferarena import hardware
    from inferarena.trackers import cost

    h = hardware.host()
    console.print(f"Host: {escape(h.cpu_model)}, {h.logical_cores} logical cores"
                  f"{' (simulated: INFERARENA_HOST)' if hardware.simulated() is not None else ''}; price "
                  + escape(cost.price(h, cfg.cost.instance, cfg.cost.usd_per_hour, planned.device,
                                      hardware.gpus() if planned.device == "cuda" else ()).label))
    if judged_by:
        from inferarena.search import build_space

        shapes = [s.value for s in planned.config.workload.shapes if s in planned.workload.strategies]
        space = build_space(planned.specs, shapes or list(planned.workload.strategies), judged_by, planned.kind,
                            planned.workload.shape_in_name)
        console.print(f"Search space: {space.size()} points over {len(space.bases)} runtime/precision/pipeline "
                      f"bases ({', '.join(d.name for d in space.dimensions)})")
    table = Table("variant", "runtime", "precision", "pipeline", box=box.SIMPLE, title="Variants that would be measured")
    for spec in planned.specs:
        table.add_row(escape(spec.name), spec.runtime, spec.precision, escape(spec.pipeline or "-"))
    console.print(table)
    for note in planned.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print("Nothing was measured or stored. Drop --dry-run to measure.")


def _launcher_options(launcher: str, ray_address: Optional[str], debug: bool) -> tuple[str, dict]:
    """The launcher `--launcher` names (inline under --debug), with its options."""
    if launcher not in ("spawn", "ray"):
        raise InferarenaError(f"unknown launcher {launcher!r}", "use --launcher spawn or --launcher ray")
    if ray_address and launcher != "ray":
        raise InferarenaError("--ray-address is given without --launcher ray", "add --launcher ray, or drop --ray-address")
    if launcher == "ray":
        return "ray", {"address": ray_address}
    return ("inline" if debug else "spawn"), {}


def _sweep(driver, cfg, db: Path, cache_dir: Path, resume: bool, json_path: Optional[Path], report_html: bool,
           sort: Optional[str], debug: bool = False, left_out: str | None = None,
           launcher: tuple[str, dict] = ("spawn", {})) -> None:
    """Run `driver` (arena.run or arena.search) with a progress bar, then show, export and report the run.

    With --debug every job runs inline, in this process, so its traceback (or a breakpoint) lands in
    the job itself; without it each runs in a fresh process that a crash or a hang cannot take down."""
    from inferarena import arena, launchers
    from inferarena.cli_reports import recommendation_of, report_path, write_report
    from inferarena.report import console as report_console
    from inferarena.report import json_export

    created = isinstance(db, Path) and not db.exists()  # a new SQLite file: removed again if nothing is stored
    store = open_db(db)
    paths = arena.Paths(cache_dir=cache_dir, work_dir=db.resolve().parent / ".inferarena")
    try:
        private_dir(paths.cache_dir)
    except OSError as exc:
        raise InferarenaError(f"cannot create cache folder {cache_dir} ({exc.strerror})", "pass --cache-dir") from None
    name, options = launcher
    runner = launchers.get(name, **options)
    with progress_bar() as (progress, on_event):
        try:
            summary = driver(cfg, store, paths, resume=resume, on_event=on_event, launcher=runner)
        except KeyboardInterrupt:
            progress.stop()
            errors.print("[yellow]Interrupted.[/] Finished variants are stored; rerun the same command with --resume.")
            raise typer.Exit(130) from None
        except InferarenaError:
            if created and not store.runs(limit=1):  # a bad config stops before any run: leave no empty DB behind
                store.close()
                db.unlink(missing_ok=True)
            raise
        finally:
            runner.close()
    if summary.resumed:
        console.print(f"Resumed run {summary.run_id}: kept {len(summary.skipped)} stored variant(s).")
    elif resume:
        console.print(f"No unfinished run with this config: started run {summary.run_id}.")
    stored = store.load_run(summary.run_id)
    rec = recommendation_of(store, stored, db.resolve().parent)
    report_console.render_run(stored, console, sort)
    if left_out:
        console.print(f"[dim]{escape(left_out)}[/]")
    if json_path:
        json_export.write(stored, json_path, rec)
        console.print(f"JSON written to {escape(str(json_path))}")
    console.print(f"Stored as run {summary.run_id} in {escape(str(db))} · see it again with: inferarena show {summary.run_id}")
    if report_html:
        path = write_report(store, summary.run_id, "html", report_path(db, summary.run_id, "html"))
        console.print(f"Report: {escape(str(path))}")
    if rec is not None:  # the answer comes last, where the eye lands when the run ends
        console.print()
        report_console.render_recommendation(rec, stored, console)


@app.command()
def search(
    profile: ProfileOption = "throughput",
    strategy: Annotated[str, typer.Option(help="optuna: TPE sampling within --trials/--time-budget-s (default: a "
                                          "quarter of the space); grid: every point.")] = "optuna",
    trials: Annotated[Optional[int], typer.Option(help="Most variants to measure.")] = None,
    time_budget_s: Annotated[Optional[float], typer.Option(
        help="Seconds for the trials and the finalists' confirmation (reserved from the mean round so far); the "
        "reference and builds come first, outside the budget.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Bundled model name, HF folder or .onnx. [default: minilm]")] = None,
    inputs: Annotated[Optional[Path], typer.Option(help="Inputs, as for `run`.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML run config; options given here override it.")] = None,
    runtimes: Annotated[Optional[list[str]], typer.Option(help="Runtimes to search over. Default: every installed one.")] = None,
    pipelines: Annotated[Optional[list[str]], typer.Option(
        help=f"Compression pipelines to search over: {', '.join(PRESETS)}, or none. Default: the model's own (see run --help).")] = None,
    shapes: Annotated[list[str], typer.Option(help="Shape strategies to search over.")] = ["fixed,bucketed,dynamic"],
    quick: Annotated[bool, typer.Option("--quick/--compliant", help="Quick trials (seconds each, labelled "
                                        "not MLPerf-compliant) or full MLPerf durations.")] = True,
    threads: Annotated[Optional[int], typer.Option(help="Threads per runtime. Default: all cores.")] = None,
    device: DeviceOption = None,
    max_p99_ms: MaxP99Option = None,
    min_cos: MinCosOption = None,
    min_throughput: MinThroughputOption = None,
    max_memory_mb: MaxMemoryOption = None,
    ci_target_pct: CiTargetOption = None,
    dry_run: DryRunOption = False,
    launcher: LauncherOption = "spawn",
    ray_address: RayAddressOption = None,
    db: DbOption = DEFAULT_DB,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the run and the pick as JSON.")] = None,
    report_html: Annotated[bool, typer.Option("--report/--no-report", help="Write the HTML report next to the DB.")] = True,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished search with this config.")] = False,
    cache_dir: Annotated[Path, typer.Option(help="Cache for converted models and GEMM peaks.")] = DEFAULT_CACHE,
    debug: SweepDebugOption = False,
) -> None:
    """Search compression × runtime × knobs × shape strategy × batch size for a profile, and recommend.

    The space comes from what each plugin declares (see the printed note). Trials clearly behind the
    best after one round are pruned; the finalists (the best of each runtime × precision, and the best of the
    rest) are measured again side by side, interleaved, and the pick is made among them on those rounds.

    Example: inferarena search --profile latency --min-cos 0.99 --trials 12
    """
    from inferarena import arena

    with user_errors(debug):
        if strategy not in ("grid", "optuna"):
            raise InferarenaError(f"unknown strategy {strategy!r}", "use --strategy optuna or --strategy grid")
        cfg = _run_config(config, model, quick, threads, profile, None, runtimes, pipelines, inputs, shapes,
                          bounds(max_p99_ms, min_cos, min_throughput, max_memory_mb),
                          {"search": {"strategy": strategy, "trials": trials, "time_budget_s": time_budget_s},
                           "rounds": {"ci_target_pct": ci_target_pct}}, device)
        if dry_run:
            return _dry_run(cfg, judged_by=cfg.profile)
        _sweep(arena.search, cfg, db, cache_dir, resume, json_path, report_html, None, debug, None,
               _launcher_options(launcher, ray_address, debug))


def _run_config(config, model, quick, threads, profile, scenarios, runtimes, pipelines, inputs, shapes, constraints,
                extra: dict | None = None, device: str | None = None):
    """The run config: the --config file, then each option given on the command line over it."""
    from inferarena.config import RunConfig

    data = RunConfig.from_yaml(config).model_dump(mode="json") if config else {}
    overrides = {"model": model, "quick": quick or None, "threads": threads, "profile": profile, "device": device}
    data.update({k: v for k, v in overrides.items() if v is not None})
    data.setdefault("constraints", {}).update({k: v for k, v in constraints.items() if v is not None})
    for key, value in (extra or {}).items():
        data.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
    if split_values(scenarios):
        data["scenarios"] = split_values(scenarios)
    if split_values(runtimes):
        data["runtimes"] = [{"name": name} for name in split_values(runtimes)]
    if split_values(pipelines) == ["none"]:
        data["pipelines"] = []
    elif split_values(pipelines):
        from inferarena.config import with_budget
        from inferarena.passes.presets import preset

        # A named preset with a budget (accuracy-controlled INT8, layer-drop, the adaptive ones) takes --min-cos.
        bound = (data.get("constraints") or {}).get("min_cos")
        data["pipelines"] = [with_budget(preset(name), bound).model_dump(mode="json") for name in split_values(pipelines)]
    workload = data.setdefault("workload", {})
    if inputs:
        workload["inputs"] = str(inputs)
    if split_values(shapes):
        workload["shapes"] = split_values(shapes)
    return RunConfig.parse(data, source=str(config) if config else "options")


@app.command("runtimes")
def list_runtimes() -> None:
    """List the runtimes: installed or not, version, devices, formats, precisions and how to add missing ones."""
    from inferarena.hardware import host

    table = Table(title="Runtimes", title_justify="left")
    for header in ("name", "installed", "version", "devices", "loads", "precisions on this CPU", "knobs", "install"):
        table.add_column(header, overflow="fold")
    for name in registry.RUNTIMES:
        runtime = registry.load(registry.RUNTIMES, name)
        installed = runtime.available()
        table.add_row(
            name,
            "[green]yes[/]" if installed else "[red]no[/]",
            runtime.version() or "-",
            ", ".join(runtime.devices),
            ", ".join(runtime.formats),
            ", ".join(runtime.supported_precisions(host())),
            ", ".join(runtime.Knobs.model_fields),
            "" if installed else escape(runtime.install_hint()),
        )
    console.print(table)


@app.command()
def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print it all as one JSON object (attach it to a bug report).")] = False,
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="Run a tiny inference on each installed runtime, "
                                        "each in its own process.")] = True,
    runtimes: Annotated[Optional[list[str]], typer.Option(help="Only these runtimes, repeated or comma-separated. "
                                                          "Default: all.")] = None,
    timeout_s: Annotated[float, typer.Option(min=1, help="Longest one runtime's check may take (seconds).")] = 120.0,
    debug: DebugOption = False,
) -> None:
    """What to run first on a new machine: CPU features, GPU, each runtime and server with its version and
    build, known-bad combinations with their fix, and a smoke inference per installed runtime (a crash
    shows as crashed (SIGSEGV) and the rest go on). Exit code 1 when a smoke test or a build probe fails,
    crashes or hangs.

    Example: inferarena doctor --json > doctor.json
    """
    from inferarena import doctor as checkup

    with user_errors(debug):
        with errors.status("looking at the runtimes") as status:
            report = checkup.collect(split_values(runtimes), smoke, timeout_s,
                                     on_start=lambda name: status.update(f"looking at {name}"))
    if json_out:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")  # not through rich: no wrapping
    else:
        checkup.render(report, console)
    line = checkup.summary(report)
    if report.broken:
        errors.print(f"[bold red]error:[/] {escape(line)} · [bold]fix:[/] leave them out of runs (--runtimes) or "
                     "reinstall them; attach `inferarena doctor --json` (it has each worker's last lines) to a bug "
                     "report", soft_wrap=True)
        raise typer.Exit(1)
    (errors if json_out else console).print(line, soft_wrap=True)


@app.command()
def optimize(
    model: Annotated[str, typer.Argument(help="Bundled model name (minilm), a Hugging Face encoder folder, or a .onnx file.")],
    pipeline: Annotated[str, typer.Option(help=f"A named pipeline ({', '.join(PRESETS)}) or passes in order, "
                                               "comma-separated, with default settings (e.g. ort_optimize,ort_quantize).")],
    inputs: Annotated[Optional[Path], typer.Option(help="Calibration/evaluation inputs, as for `run`.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML run config for the workload and threads.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Where pass outputs are cached.")] = DEFAULT_CACHE,
    debug: DebugOption = False,
) -> None:
    """Apply a pipeline of passes to a model and write the artifact, without measuring it.

    Example: inferarena optimize minilm --pipeline int8-dynamic-ac
    """
    from inferarena import arena
    from inferarena.config import RunConfig
    from inferarena.passes.presets import preset

    with user_errors(debug):
        data = RunConfig.from_yaml(config).model_dump(mode="json") if config else {}
        data["model"] = model
        if inputs:
            data.setdefault("workload", {})["inputs"] = str(inputs)
        cfg = RunConfig.parse(data, source=str(config) if config else "options")
        if pipeline in PRESETS:
            spec = preset(pipeline)
        else:
            spec = RunConfig.parse({"pipelines": [{"name": "custom", "passes": [{"name": n} for n in split_values([pipeline])]}]},
                                   source="--pipeline").pipelines[0]
        paths = arena.Paths(cache_dir=cache_dir, work_dir=Path(".inferarena"))
        with progress_bar() as (_, on_event):
            result = arena.optimize(cfg, spec, paths, on_event)
    table = Table(title=f"{spec.name} on {model}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("pass", "cached", "seconds", "report"):
        table.add_column(header, overflow="fold")
    reports = result.artifact.meta.get("pass_report", {})
    for step in result.passes:
        report = reports.get(step.name, {})
        table.add_row(step.name, "yes" if step.cached else "no", f"{step.seconds:.1f}",
                      escape(json.dumps(report)) if report else "-")
    console.print(table)
    console.print(f"Artifact ({result.artifact.format}): {escape(str(result.artifact.path))}")


@app.command()
def peak(
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again instead of reading the cache.")] = False,
    threads: Annotated[Optional[int], typer.Option(help="Threads for the GEMMs. Default: all cores.")] = None,
    device: DeviceOption = None,
    cache_dir: Annotated[Path, typer.Option(help="Where measured peaks are cached.")] = DEFAULT_CACHE,
    debug: DebugOption = False,
) -> None:
    """Measure (or show the cached) attainable GEMM peak of this machine per precision.

    The peak is the best GFLOP/s (GOP/s for INT8) of square matmuls of a few sizes on all threads;
    leaderboards report each variant's achieved GFLOP/s as a percentage of its precision's peak. With
    --device cuda: the GPU's FP32/BF16/FP16/INT8/FP8 GEMM peaks and its HBM bandwidth.

    Example: inferarena peak --device cuda --refresh
    """
    from inferarena import jobs
    from inferarena.hardware import host, resolve_device
    from inferarena.launchers import Spawn

    with user_errors(debug):
        resolved = resolve_device(device or "cpu")
        outcome = Spawn().run(jobs.peaks, (cache_dir, threads or host().logical_cores, refresh, resolved), 300)
        if not outcome.ok:
            raise InferarenaError(f"cannot measure GEMM peaks ({outcome.error})", "pip install 'inferarena[torch]'")
    result = outcome.value
    where = result.device or host().cpu_model
    how = (f"CUDA {result.cuda}, compute capability {result.compute_capability}" if resolved != "cpu"
           else f"{result.threads} threads")
    table = Table(title=f"GEMM peak of {where}", title_justify="left", caption_justify="left",
                  caption=f"{how}, torch {result.torch}, measured {result.measured_at}")
    table.add_column("precision")
    table.add_column("peak", justify="right")
    for precision, gflops in result.gflops.items():
        table.add_row(precision, f"{gflops:,.0f} {'GOP/s' if precision == 'int8' else 'GFLOP/s'}")
    if result.hbm:
        table.add_row("HBM read", f"{result.hbm['read_gb_per_s']:,.0f} GB/s")
        table.add_row("HBM copy", f"{result.hbm['copy_gb_per_s']:,.0f} GB/s (read + written)")
    console.print(table)
    if result.not_cached:
        console.print(f"[yellow]Not cached:[/] {result.not_cached}; measure again on a quiet machine "
                      "(inferarena peak --refresh).")


@app.command()
def results(db: DbOption = DEFAULT_DB, debug: DebugOption = False) -> None:
    """List past runs stored in the database."""
    with user_errors(debug):
        require_db(db)
        rows = open_db(db).runs()
    table = Table(title=f"Runs in {db}", title_justify="left")
    for header in ("run", "created (UTC)", "model", "mode", "ok", "failed", "status"):
        table.add_column(header)
    for r in rows:
        table.add_row(str(r["run_id"]), r["created_at"], r["model"], "quick" if r["quick"] else "compliant",
                      str(r["ok"] or 0), str(r["failed"] or 0), r["status"])
    console.print(table if rows else f"No runs in {db} yet: try `inferarena run --quick`.")


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="Run number, as listed by `inferarena results`.")],
    db: DbOption = DEFAULT_DB,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the run as JSON to this file.")] = None,
    sort: SortOption = None,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every table whole, however wide (for a wide terminal or a file); by default the "
        "columns that do not fit the terminal go to a second table.")] = False,
    debug: DebugOption = False,
) -> None:
    """Print a past run's leaderboards again.

    Example: inferarena show 1 --wide > run1.txt"""
    from inferarena.report import console as report_console
    from inferarena.report import json_export

    with user_errors(debug):
        require_db(db)
        stored = open_db(db).load_run(run_id)
        if stored is None:
            raise InferarenaError(f"run {run_id} is not in {db}", "list the runs with `inferarena results`")
        report_console.render_run(stored, Console(width=100_000) if wide else console, sort, wide)
    if json_path:
        json_export.write(stored, json_path)
        console.print(f"JSON written to {escape(str(json_path))}")


# The order registers the commands, and so orders --help.
# isort: off
from inferarena import cli_reports  # noqa: E402,F401 - registers `report` and `compare` after the others
from inferarena import cli_serving  # noqa: E402,F401 - registers `serve-bench`
from inferarena import cli_agents  # noqa: E402,F401 - registers `agents`
from inferarena import cli_deploy  # noqa: E402,F401 - registers `deploy`
# isort: on


def main(argv: list[str] | None = None) -> None:
    """The `inferarena` command. A mistyped option or value ends, like every user error, in one line
    that names the problem and the fix, and exit code 2 (click's own usage report is several lines)."""
    try:
        from typer._click import exceptions as click  # typer 0.2x carries its own click
    except ImportError:
        from click import exceptions as click

    try:
        code = app(args=argv, prog_name="inferarena", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:  # bare `inferarena` or `inferarena CMD`: the help is the answer
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        sys.exit(2)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "inferarena"
        errors.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))} · [bold]fix:[/] "
                     f"see `{escape(command)} --help`", soft_wrap=True)
        sys.exit(2)
    except click.ClickException as exc:  # a bad file argument and the like
        errors.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        errors.print("[yellow]Interrupted.[/]")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
