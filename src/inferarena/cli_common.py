"""What every `inferarena` command shares: the app, the consoles, common options, error handling, the
progress display. The command modules (cli_reports, cli_serving) import this, never `cli`, which imports
them to register their commands."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from inferarena.config import config_error
from inferarena.errors import InferarenaError, StoreError

app = typer.Typer(
    help="Find the fastest, cheapest and most efficient way to serve a model: every runtime, measured "
    "with MLPerf LoadGen, checked against the FP32 reference, kept in a SQLite history.\n\n"
    "Start with:  inferarena run --quick",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `make demo > file`) gets room for the leaderboards; terminals keep their width.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)
errors = Console(stderr=True)

class DbUrl:
    """A `--db` that names a database server (postgresql://USER@HOST:PORT/DB). Printed without its
    password; reports and work files go to the current folder, where a SQLite file would be."""

    def __init__(self, url: str):
        from inferarena.store.postgres import redact

        self.url, self.label = url, redact(url)

    def __str__(self) -> str:
        return self.label

    def resolve(self) -> Path:
        return Path.cwd().resolve() / "inferarena.db"


def _db(value) -> Path | DbUrl:
    from inferarena.store import is_url

    if isinstance(value, (Path, DbUrl)):
        return value
    return DbUrl(value) if is_url(value) else Path(value)


def open_db(db: Path | DbUrl):
    """The store `--db` names: a SQLite file or a PostgreSQL server."""
    from inferarena.store import open_store

    return open_store(db.url if isinstance(db, DbUrl) else db)


DEFAULT_DB = Path("inferarena.db")
DEFAULT_CACHE = Path.home() / ".cache" / "inferarena"
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")]
DbOption = Annotated[Path, typer.Option("--db", parser=_db, metavar="PATH|URL", help=(
    "Where the run history is kept: a SQLite file, or a PostgreSQL database shared by several drivers "
    "(postgresql://USER@HOST:PORT/DB, needs the postgres extra)."))]
SortOption = Annotated[Optional[str], typer.Option(
    help="Rank every leaderboard by this metric instead, e.g. energy_j_per_query, cost_usd_per_1m, pct_of_peak, "
    "latency_ms_p99, throughput_sps.")]

ProfileOption = Annotated[Optional[str], typer.Option(
    help="What matters most: latency (SingleStream p90), throughput (Offline samples/s), balanced (both, "
    "relative to the best), small (model size on disk), energy (Offline J/query, estimated without a power "
    "counter), cost ($ per 1M queries at Offline throughput).")]
MaxP99Option = Annotated[Optional[float], typer.Option("--max-p99-ms", help="Bound on SingleStream p99 latency (ms).")]
MinCosOption = Annotated[Optional[float], typer.Option("--min-cos", help="Bound on cos_min against the FP32 reference.")]
MinThroughputOption = Annotated[Optional[float], typer.Option(
    "--min-throughput", help="Bound on Offline throughput (samples/s).")]
CiTargetOption = Annotated[Optional[float], typer.Option(
    "--ci-target-pct", help="Measure each variant until the 95% CI half-width of its ranking figures is below "
    "this % (one more process round at a time, up to rounds.max_rounds or rounds.ci_budget_s). E.g. 2.")]
DeviceOption = Annotated[Optional[str], typer.Option(
    "--device", help="Where the variants compute: cpu, cuda (an NVIDIA GPU: runtimes that do not run there are "
    "skipped with the reason; without a GPU the command stops with an error) or auto (cuda where a GPU is "
    "visible, else cpu). GPU code paths have not been run on a GPU yet: see the guide's GPUs section. "
    "[default: cpu]")]
MaxMemoryOption = Annotated[Optional[float], typer.Option("--max-memory-mb", help="Bound on peak RSS (MB).")]


def bounds(max_p99_ms, min_cos, min_throughput, max_memory_mb) -> dict:
    """The constraint options, keyed as `ConstraintsConfig` names them."""
    return {"max_p99_ms": max_p99_ms, "min_cos": min_cos, "min_throughput": min_throughput,
            "max_memory_mb": max_memory_mb}


@contextmanager
def user_errors(debug: bool):
    """Problems the user can fix end in one line and exit code 2; --debug shows the traceback."""
    try:
        yield
    except (InferarenaError, ValidationError) as exc:  # ValidationError: a typed config built from options
        if debug:
            raise
        if isinstance(exc, ValidationError):
            exc = config_error(exc, "options")
        # One line (never wrapped), so a log's grep for "error:" finds the problem and its fix together.
        errors.print(f"[bold red]error:[/] {escape(_flat(exc.problem))}" + (f" · [bold]fix:[/] {escape(_flat(exc.fix))}" if exc.fix else ""),
                     soft_wrap=True)
        raise typer.Exit(2) from None


def _flat(text: str) -> str:
    return " ".join(str(text).split())


def split_values(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def require_db(db: Path | DbUrl) -> None:
    if isinstance(db, Path) and not db.is_file():
        raise StoreError(f"no results database at {db}", "run `inferarena run` first, or pass --db")


@contextmanager
def progress_bar():
    """A progress bar fed by a sweep's events (`on_event`): notes, one line per variant, the count done."""
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )
    state: dict = {}

    def on_event(event: str, data: dict) -> None:
        if event == "plan":
            for note in data["notes"]:
                progress.console.print(f"[dim]note: {escape(note)}[/]")
            state["task"] = progress.add_task(f"run {data['run_id']}", total=data["todo"])
        elif event == "start" and "task" in state:
            progress.update(state["task"], description=f"measuring {escape(data['name'])}")
        elif event == "done":
            mark = "[green]✓[/]" if data["ok"] else f"[red]✗[/] {escape(str(data['error']))}"
            progress.console.print(f"  {escape(data['name'])}: {mark}")
            if data.get("variant"):
                progress.advance(state["task"])

    with progress:
        yield progress, on_event
