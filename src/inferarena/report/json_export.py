"""The run as JSON for other tools. Stable keys: run_id, environment, variants[] with name, runtime,
precision, status, error and flat `metrics` such as `single_stream.latency_ms_p50`,
`offline.throughput_sps`, `fidelity.cos_min` and `memory.peak_rss_mb`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferarena.scenarios.base import QUICK_NOTE


def flat_metrics(variant: dict) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for scenario, measured in variant["scenarios"].items():
        metrics[f"{scenario}.valid"] = measured["valid"]
        for key, value in measured["metrics"].items():
            metrics[f"{scenario}.{key}"] = value
    for group in ("fidelity", "memory"):
        for key, value in (variant.get(group) or {}).items():
            metrics[f"{group}.{key}"] = value
    for task in variant.get("task") or []:
        if "value" in task:
            metrics[f"task.{task['name']}.{task['metric']}"] = task["value"]
    return metrics


def describe_workload(workload: dict) -> str:
    """One line: what the samples are and, for text, how long they are."""
    if workload.get("kind") == "text":
        return (f"{workload['samples']} texts from {workload['source']}, tokens p50 {workload['tokens_p50']:.0f} / "
                f"p90 {workload['tokens_p90']:.0f} / max {workload['tokens_max']} (fixed pads to {workload['max_length']})")
    return f"{workload.get('samples', '?')} samples, {workload.get('source', 'unknown source')}"


def to_document(run: dict) -> dict[str, Any]:
    return {
        "run_id": run["run_id"],
        "created_at": run["created_at"],
        "status": run["status"],
        "model": run["model"],
        "mode": QUICK_NOTE if run["quick"] else "compliant",
        "environment": run["environment"],
        "workload": run["workload"],
        "config": run["config"],
        "notes": run["notes"],
        "variants": [
            {
                "name": v["name"],
                "runtime": v["runtime"],
                "precision": v["precision"],
                "shape": v["shape"],
                "knobs": v["knobs"],
                "status": v["status"],
                "error": v["error"],
                "passes": [step["pass"] for step in v.get("passes") or []],
                "kept_layers": v.get("kept_layers"),
                "pass_report": v.get("pass_report"),
                "session_info": v["session_info"],
                "metrics": flat_metrics(v),
                "scenarios": {
                    name: {"valid": m["valid"], "invalid_reason": m["invalid_reason"], "mode": m["mode"]}
                    for name, m in v["scenarios"].items()
                },
            }
            for v in run["variants"]
        ],
        **_recommendation(run),
    }


def _recommendation(run: dict) -> dict[str, Any]:
    """`recommendation` (profile, variant, explanation, constraints, met, CI of the deciding metric) and
    `pareto` (variant names), when a pick was made."""
    rec = run.get("recommendation")
    if not rec:
        return {}
    return {"recommendation": {k: v for k, v in rec.items() if k != "pareto"}, "pareto": rec["pareto"]}


def write(run: dict, path: Path) -> None:
    path.write_text(json.dumps(to_document(run), indent=2))
