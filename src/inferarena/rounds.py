"""Several rounds of one variant, each in a fresh process, merged into one result.

One process can run 20-50% slower than the next on a shared VM and stay so for its whole life
(thread placement, noisy neighbours): samples inside one process never show that, rounds do.
The merged figure is the mean of the rounds' figures; the spread of a central figure (p50, or
Offline throughput) across rounds is kept next to it, and raw samples keep their round boundaries so that `compare` can
bootstrap over rounds, not only over samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inferarena import registry, stats


def spread_pct(values: list[float]) -> float:
    """(max - min) / median, in %: how far apart the rounds landed."""
    values = [v for v in values if v is not None and v == v]
    if len(values) < 2 or not np.median(values):
        return 0.0
    return float((max(values) - min(values)) / abs(np.median(values)) * 100.0)


def spread_metric(scenario: str) -> str:
    return registry.load(registry.SCENARIOS, scenario).spread_metric


def noisiest(result: dict) -> tuple[str, float] | None:
    """The scenario whose rounds disagree most, and by how much (%)."""
    spreads = [(s["scenario"], s["metrics"].get("round_spread_pct", 0.0)) for s in result.get("scenarios", [])]
    return max(spreads, key=lambda item: item[1], default=None)


def drifting(results: list[dict]) -> tuple[str, float] | None:
    """The scenario whose latency moved most between the halves of one round, and by how much (%, absolute)."""
    drifts = [(s["scenario"], abs(s["metrics"]["drift_pct"])) for r in results for s in r.get("scenarios", [])
              if s["metrics"].get("drift_pct") is not None]
    return max(drifts, key=lambda item: item[1], default=None)


def ci_statistic(scenario: str) -> str | None:
    """How a scenario's ranking figure is computed from its raw samples, for `stats.half_width_pct`."""
    return registry.load(registry.SCENARIOS, scenario).ci_statistic


def ci_width(scenario: str, rounds: list[dict]) -> float | None:
    """The CI half-width (%) of a scenario's ranking figure over its rounds' raw samples."""
    statistic = ci_statistic(scenario)
    samples = [r["latencies_ms"] for r in rounds if r.get("latencies_ms") is not None]
    return stats.half_width_pct(samples, statistic) if statistic and samples else None


def widest_ci(results: list[dict]) -> tuple[str, float] | None:
    """The scenario whose ranking figure is least certain over these rounds: (name, CI half-width in %)."""
    widths = []
    for name in dict.fromkeys(s["scenario"] for r in results for s in r.get("scenarios", [])):
        width = ci_width(name, [s for r in results for s in r["scenarios"] if s["scenario"] == name])
        if width is not None:
            widths.append((name, width))
    return max(widths, key=lambda item: item[1], default=None)


def merge(results: list[dict]) -> dict:
    """One variant result from its rounds' results (all "ok"); the first round gives the non-timing fields."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    merged = {**first, "rounds": len(results)}
    merged["load_s"] = round(float(np.mean([r["load_s"] for r in results])), 3)
    merged["memory"] = _merge_metrics([r["memory"] for r in results if r.get("memory")]) if first.get("memory") else None
    by_name: dict[str, list[dict]] = {}
    for r in results:
        for s in r["scenarios"]:
            by_name.setdefault(s["scenario"], []).append(s)
    merged["scenarios"] = [_merge_scenario(name, rounds) for name, rounds in by_name.items()]
    return merged


def _merge_scenario(name: str, rounds: list[dict]) -> dict:
    first = rounds[0]
    metrics = _merge_metrics([r["metrics"] for r in rounds])
    key = spread_metric(name)
    values = [r["metrics"].get(key) for r in rounds]
    if all(isinstance(v, (int, float)) for v in values):
        metrics[f"{key}_by_round"] = values
        metrics["round_spread_pct"] = round(spread_pct(values), 2)
    metrics["rounds"] = len(rounds)
    width = ci_width(name, rounds)
    if width is not None:
        metrics["ci_half_width_pct"] = round(width, 2)
    invalid = [r["invalid_reason"] for r in rounds if not r["valid"]]
    samples = [np.asarray(r["latencies_ms"]) for r in rounds if r.get("latencies_ms") is not None]
    return {
        **first,
        "valid": not invalid,
        "invalid_reason": "; ".join(dict.fromkeys(invalid)) or None,
        "metrics": metrics,
        "loadgen": _merge_metrics([r["loadgen"] for r in rounds]),
        "latencies_ms": np.concatenate(samples) if samples else None,
        "round_sizes": [len(s) for s in samples],
    }


def _merge_metrics(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers: the mean over rounds (peaks and maxima: the max; a bound met: only if every round met it)."""
    out: dict[str, Any] = {}
    for key, value in dicts[0].items():
        values = [d.get(key) for d in dicts]
        if isinstance(value, bool) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for v in values
                          if isinstance(v, list) for x in v)
            if isinstance(value, list) and numeric and all(isinstance(v, list) and len(v) == len(value) for v in values):
                out[key] = [round(float(np.mean(col)), 3) for col in zip(*values)]
            else:
                out[key] = value
        elif key.startswith("peak_") or key.endswith(("_peak_rss_mb", "_max")) or key == "window_peak_rss_mb":
            out[key] = max(values)
        elif key.endswith("_met"):
            out[key] = min(values)
        else:
            out[key] = float(np.mean(values))
    return out
