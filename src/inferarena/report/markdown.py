"""Markdown (ready to paste into a pull request) and CSV (one row per variant) views of a run."""

from __future__ import annotations

import csv
import io

from inferarena import kinds
from inferarena.report.json_export import describe_workload
from inferarena.report.leaderboard import board, measured_scenarios
from inferarena.results import RunRecord


def _md(text: object) -> str:
    """Neutralize what Markdown or HTML would interpret inside a table cell."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", " "))


def to_markdown(run: RunRecord, sort: str | None = None) -> str:
    env = run.environment
    mode = kinds.of_run(run).mode(run.quick)
    lines = [
        f"### inferarena run {run.run_id}: {_md(run.model)}",
        "",
        f"{_md(env['cpu_model'])}, {env['logical_cores']} cores · **{mode}** · {_md(describe_workload(run.workload))}",
        "",
    ]
    ok = run.ok
    fidelity = kinds.of_run(run).fidelity_key(ok)
    for scenario in measured_scenarios(run):
        data = board(scenario, ok, run.quick, sort, fidelity=fidelity)
        lines += [f"**{_md(data.title)}**", "", "| # | variant | " + " | ".join(data.headers) + " |",
                  "|---|---|" + "---:|" * len(data.headers)]
        status_at = data.headers.index("LoadGen") if "LoadGen" in data.headers else None
        for position, (v, cells, valid, reason) in enumerate(data.rows, 1):
            status = "VALID" if valid else f"INVALID ({_md(reason or 'no reason given')})"
            if status_at is not None:
                cells = [*cells[:status_at], status, *cells[status_at:]]
            lines.append(f"| {position} | {_md(v.name)} | " + " | ".join(_md(c) for c in cells) + " |")
        lines.append("")
    failed = [v for v in run.variants if not v.ok]
    if failed:
        lines += ["**Failed variants**", ""] + [f"- `{_md(v.name)}`: {_md(v.error)}" for v in failed] + [""]
    if env.get("price"):
        lines.append(f"<sub>Cost: {_md(env['price'])}</sub>")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading quote."""
    if isinstance(value, list):
        value = " ".join(map(str, value))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(run: RunRecord) -> str:
    rows = [{"name": v.name, "runtime": v.runtime, "precision": v.precision, "shape": v.shape,
             "status": v.status, "error": v.error or "", **v.flat()} for v in run.variants]
    fields = ["name", "runtime", "precision", "shape", "status", "error"]
    fields += sorted({k for r in rows for k in r} - set(fields))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()
