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
    metrics.update({f"generation.{k}": v for k, v in generation_summary(variant).items()})
    return metrics


# The LLM figures users judge by, under one prefix: (key, scenario, metric).
GENERATION_SUMMARY = (
    ("ttft_ms_p50", "llm_single_stream", "ttft_ms_p50"), ("ttft_ms_p90", "llm_single_stream", "ttft_ms_p90"),
    ("tpot_ms_p50", "llm_single_stream", "tpot_ms_p50"), ("tpot_ms_p90", "llm_single_stream", "tpot_ms_p90"),
    ("itl_ms_p50", "llm_single_stream", "itl_ms_p50"), ("itl_ms_p99", "llm_single_stream", "itl_ms_p99"),
    ("tokens_per_s", "llm_single_stream", "tokens_per_s"),
    ("decode_tokens_per_s", "llm_single_stream", "decode_tokens_per_s"),
    ("pct_of_bandwidth", "llm_single_stream", "pct_of_bandwidth"),
    ("offline_tokens_per_s", "llm_offline", "tokens_per_s"), ("server_requests_per_s", "llm_server", "target_qps"),
)


def generation_summary(variant: dict) -> dict[str, Any]:
    """`metrics.generation.*`: a generative variant's headline figures, whichever scenario measured them."""
    scenarios = variant.get("scenarios") or {}
    return {key: scenarios[name]["metrics"][metric] for key, name, metric in GENERATION_SUMMARY
            if name in scenarios and scenarios[name]["metrics"].get(metric) is not None}


def describe_workload(workload: dict) -> str:
    """One line: what the samples are and, for text, how long they are."""
    if workload.get("kind") == "text":
        return (f"{workload['samples']} texts from {workload['source']}, tokens p50 {workload['tokens_p50']:.0f} / "
                f"p90 {workload['tokens_p90']:.0f} / max {workload['tokens_max']} (fixed pads to {workload['max_length']})")
    if workload.get("kind") == "prompts":
        return (f"{workload['samples']} prompts from {workload['source']}, prompt tokens p50 "
                f"{workload['prompt_tokens_p50']:.0f} / p90 {workload['prompt_tokens_p90']:.0f} / max "
                f"{workload['prompt_tokens_max']}, {workload['output_tokens_p50']:.0f} tokens generated each (greedy); "
                f"perplexity on {workload['perplexity_tokens']} held-out tokens")
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
