"""A scenario's leaderboard as data (ranking, headers, rows), shared by the terminal and Markdown views."""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferarena import kinds, registry
from inferarena.errors import ConfigError
from inferarena.results import RunRecord, VariantResult, higher_is_better

# Shown in every scenario's table after its own columns: (metric key, header, scale).
EFFICIENCY = (("energy_j_per_query", "mJ/q", 1000.0), ("cost_usd_per_1m", "$/1M", 1.0), ("useful_pct_of_peak", "%peak", 1.0))
# Rounds measured (each in its own process), how far apart their ranking figures landed, and the CI.
ROUNDS_HEADERS = ("rounds", "spread %", "±CI %")
# What each compact header means: printed as one legend line under the tables that show it.
LEGEND = {
    "mJ/q": "energy per query",
    "mJ/q est.": "energy per query, estimated (CPU time × W per thread)",
    "$/1M": "USD per million queries",
    "%peak": "useful FLOP/s (unpadded inputs) ÷ the precision's GEMM peak",
    "rounds": "each in its own process",
    "spread %": "between rounds (! noisy)",
    "±CI %": "95% CI half-width of the ranking figure",
}
NOISY_NOTE = ("! rounds disagree by more than {pct:g}%: the machine was noisy (those variants got extra rounds; "
              "`compare` widens its intervals)")


@dataclass
class Board:
    title: str  # e.g. "SingleStream — ranked by p90 latency, lowest first"
    headers: list[str]  # after "#", "variant"; "LoadGen" marks the status column
    rows: list[tuple[VariantResult, list[str], bool, str | None]]  # (variant, cells, valid, invalid reason)


def sortable_metrics(run: RunRecord) -> list[str]:
    """Numeric per-scenario metric keys present in this run: the choices of --sort."""
    keys = {k for v in run.variants for m in v.scenarios.values()
            for k, value in m.metrics.items() if isinstance(value, (int, float))}
    return sorted(keys)


def check_sort(run: RunRecord, sort: str | None) -> None:
    if sort is not None and sort not in sortable_metrics(run):
        raise ConfigError(f"cannot sort by {sort!r}", f"choose one of: {', '.join(sortable_metrics(run))}")


def board(scenario: str, variants: list[VariantResult], quick: bool, sort: str | None = None, noisy_pct: float = 10.0,
          fidelity: tuple[str, str] = ("cos_min", "cos min")) -> Board:
    """`fidelity`: the (fidelity field, header) shown next to the timings, as the run's kind chooses."""
    cls = registry.load(registry.SCENARIOS, scenario)
    if sort:
        ranking = f"{sort}, {'highest' if higher_is_better(sort) else 'lowest'} first"

        def rank(metrics: dict) -> tuple:
            value = metrics.get(sort)
            if not isinstance(value, (int, float)) or math.isnan(value):
                return (1, 0.0)
            return (0, -value if higher_is_better(sort) else value)
    else:
        ranking, rank = cls.ranking, cls.rank_key
    rows = [v for v in variants if scenario in v.scenarios]
    sources = {v.scenarios[scenario].metrics.get("energy_source") for v in rows}
    efficiency = getattr(cls, "efficiency", EFFICIENCY)
    fidelity_key, fidelity_header = fidelity
    headers = [h for _, h in cls.columns] + (["LoadGen"] if getattr(cls, "loadgen", True) else []) + [fidelity_header] + [
        h + (" est." if key.startswith("energy_j") and sources == {"estimate"} else "") for key, h, _ in efficiency
    ]
    with_rounds = any(v.scenarios[scenario].metrics.get("rounds", 1) > 1 for v in rows)
    if with_rounds:
        headers += ROUNDS_HEADERS
    out = []
    for v in sorted(rows, key=lambda v: rank(v.scenarios[scenario].metrics)):
        measured = v.scenarios[scenario]
        metrics = measured.metrics
        cells = [fmt(metrics.get(k)) for k, _ in cls.columns]
        value = kinds.get(v.kind).fidelity_of(v).get(fidelity_key)
        cells.append(f"{value:.5f}" if fidelity_key == "cos_min" and value is not None else fmt(value))
        cells += [fmt(metrics[k] * scale if isinstance(metrics.get(k), (int, float)) else None)
                  for k, _, scale in efficiency]
        if with_rounds:
            spread, ci = metrics.get("round_spread_pct"), metrics.get("ci_half_width_pct")
            cells += [str(metrics.get("rounds", 1)),
                      "-" if spread is None else f"{spread:.0f}{'!' if spread > noisy_pct else ''}",
                      "-" if ci is None else f"{ci:.1f}"]
        out.append((v, cells, measured.valid, None if measured.valid else measured.invalid_reason))
    mode = " · quick (not MLPerf-compliant)" if quick else ""
    return Board(f"{cls.lg_scenario} — ranked by {ranking}{mode}", headers, out)


def measured_scenarios(run: RunRecord) -> list[str]:
    """The scenarios the variants were measured in: the config's order, then any others (a generative
    model runs the llm_* scenarios whatever the config lists)."""
    found = {name for v in run.variants for name in v.scenarios}
    listed = [s for s in run.config["scenarios"] if s in found]
    return listed + [s for s in registry.SCENARIOS if s in found and s not in listed]


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)
