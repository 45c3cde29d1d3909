"""The bundle's README.md: what was measured (figures with units, host, date), how to reproduce it, how to
serve it on the target, a request with the model's real input names, and what was and was not checked."""

from __future__ import annotations

from typing import Any

from inferarena import registry
from inferarena.deploy.base import Written
from inferarena.deploy.deployable import Deployable


def render(d: Deployable, target: str, written: Written, manifest: dict[str, Any]) -> str:
    title = registry.load(registry.DEPLOY_TARGETS, target).title
    v, run = d.variant, d.run
    mode = "quick (not MLPerf-compliant)" if run.quick else "MLPerf settings"
    lines = [
        f"# {run.model}: {v.name} on {title}",
        "",
        f"Written by `inferarena deploy` from run {run.run_id} (measured {run.created_at[:16].replace('T', ' ')} UTC, "
        f"{mode}).",
        "",
        *([f"Chosen by the recommendation, {d.why}", ""] if d.why else ["Chosen with `--variant`.", ""]),
        "## What was measured",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {f['label']} (`{key}`) | {_num(f['value'])} {f['unit']} |" for key, f in manifest["measured"].items()],
        "",
        f"- Host: {d.host} ({run.environment.get('cpu_model', '?')}, {run.environment.get('logical_cores', '?')} "
        f"logical cores, {run.environment.get('memory_gb', '?')} GB).",
        f"- Runtime: {d.runtime} {d.versions().get(d.runtime, '')}, {v.precision}, shapes `{v.shape}`, batch "
        f"{d.batch_size}; knobs: {_knobs(_on_device(d))}.",
        f"- Served as: {d.instances} instance(s) × {d.threads_per_instance} thread(s); batches up to {d.batch_size} "
        f"within {d.max_delay_us / 1000:g} ms ({d.batching_basis})"
        + (f"; memory {d.memory_mi} Mi (peak RSS × 1.5)." if d.memory_mi else "."),
        f"- Artifact: `{manifest['artifact']['path']}` ({d.format}"
        + (f", sha256 `{manifest['artifact']['sha256'][:16]}…`" if manifest["artifact"]["sha256"] else "")
        + f"), copied from `{d.artifact}`.",
        f"- Lineage: {_lineage(d)}.",
        f"- Inputs: {_tensors(d.inputs)}; outputs: {_tensors(d.outputs)} (-1: any size).",
        "",
        "## Reproduce the measurement",
        "",
        "```\ninferarena run --config reproduce.yaml\n```",
        "",
        f"## Serve it on {title}",
        "",
        written.serve,
        "",
        "## Request",
        "",
        f"One sample, with the model's input names and a small shape (open dimensions set to a few elements):\n\n"
        f"```\n{written.request}\n```",
        "",
        "## Checked when this bundle was written",
        "",
        *[f"- {c}" for c in written.checks],
        "",
    ]
    notes = manifest["notes"]
    if notes:
        lines += ["## Differences from the measurement, and what was not run here", "", *[f"- {n}" for n in notes], ""]
    lines += ["`inferarena-bundle.json` lists every file with its sha256, the variant's lineage and these figures.", ""]
    return "\n".join(lines)


def _on_device(d: Deployable) -> dict:
    """The knobs that mean something where it ran (a CPU variant's ORT gpu_provider is left out)."""
    from inferarena import runtimes
    from inferarena.errors import ConfigError
    from inferarena.runtimes.base import knobs_on_device

    try:
        return knobs_on_device(runtimes.get(d.runtime).Knobs, d.knobs, d.variant.device)
    except ConfigError:  # a runtime this install no longer has: its knobs as stored
        return d.knobs


def _lineage(d: Deployable) -> str:
    steps = [f"`{p.name}`" + (f" {_knobs(p.config)}" if p.config else "") for p in d.variant.passes]
    return " → ".join([f"`{d.run.model}`", *steps]) if steps else f"`{d.run.model}` as loaded (no pass)"


def _tensors(tensors) -> str:
    return ", ".join(f"`{t.name}` {t.dtype} [{', '.join('-1' if n is None else str(n) for n in t.shape)}]"
                     for t in tensors)


def _knobs(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if v is not None) or "defaults"


def _num(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return str(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.4g}"
