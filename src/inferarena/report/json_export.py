"""The run as JSON for other tools. Stable keys: run_id, environment, variants[] with name, runtime,
precision, status, error, kind, pipeline, lineage and flat `metrics` such as
`single_stream.latency_ms_p50`, `offline.throughput_sps`, `fidelity.cos_min` and `memory.peak_rss_mb`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferarena import kinds
from inferarena.hardware import hardware_class
from inferarena.results import RunRecord
from inferarena.scenarios.base import QUICK_NOTE


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
    if workload.get("kind") == "tasks":
        return f"{workload['samples']} tasks: {workload['source']}"
    return f"{workload.get('samples', '?')} samples, {workload.get('source', 'unknown source')}"


def to_document(run: RunRecord, recommendation=None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "created_at": run.created_at,
        "status": run.status,
        "model": run.model,
        "mode": QUICK_NOTE if run.quick else "compliant",
        "environment": run.environment,
        "workload": run.workload,
        "config": run.config,
        "notes": run.notes,
        "variants": [
            {
                "name": v.name,
                "runtime": v.runtime,
                "precision": v.precision,
                "shape": v.shape,
                "knobs": v.knobs,
                "status": v.status,
                "error": v.error,
                "kind": v.kind,
                "pipeline": v.pipeline,
                "pipeline_config": v.pipeline_config,
                "passes": [step.name for step in v.passes],
                "lineage": [{k: step.as_dict()[k] for k in ("pass", "parent", "output")} for step in v.passes],
                "kept_layers": v.kept_layers,
                "pass_report": v.pass_report, "payload": v.payload,
                "session_info": v.session_info,
                "pruned": v.pruned,  # a search trial stopped after one round
                "confirmed": v.confirmed,  # a search finalist: figures from its interleaved confirmation alone
                "node": v.node,  # the machine it was measured on; rank only within one hardware_class
                "hardware_class": hardware_class(v.node),
                "metrics": v.flat(),
                "scenarios": {
                    name: {"valid": m.valid, "invalid_reason": m.invalid_reason, "mode": m.mode}
                    for name, m in v.scenarios.items()
                },
            }
            for v in run.variants
        ],
        **kinds.of_run(run).document(run),
        **_recommendation(recommendation),
    }


def _recommendation(rec) -> dict[str, Any]:
    """`recommendation` (profile, variant, explanation, constraints, met, CI of the deciding metric),
    `pareto` (variant names), when a pick was made, and a search's `search.finalists`: each with its
    runtime, precision, confirmed figure (`metric`) and its 95 % CI, best first."""
    if rec is None:
        return {}
    found = rec.as_dict()
    doc = {"recommendation": {k: v for k, v in found.items() if k not in ("pareto", "finalists")},
           "pareto": found["pareto"]}
    if found["finalists"]:
        doc["search"] = {"metric": rec.metric, "finalists": found["finalists"]}
    return doc


def write(run: RunRecord, path: Path, recommendation=None, serving: dict | None = None) -> None:
    """The run as JSON; `serving`: serve-bench's best server configuration for the model, when one exists."""
    document = to_document(run, recommendation)
    if serving is not None:
        document["serving"] = serving
    path.write_text(json.dumps(document, indent=2))
