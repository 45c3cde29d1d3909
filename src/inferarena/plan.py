"""Which variants a run measures: runtimes × precisions × shape strategies, from the config and the host.

Decided from plugin declarations only (formats, precisions, knobs), so the core names no runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferarena import passes, registry, runtimes
from inferarena.artifacts import Artifact
from inferarena.config import RunConfig, RuntimeSpec
from inferarena.errors import ConfigError, ModelError
from inferarena.hardware import Host
from inferarena.workloads.base import Workload


@dataclass(frozen=True)
class VariantSpec:
    name: str
    runtime: str
    precision: str
    shape: str
    knobs: dict[str, Any] = field(hash=False)
    # The pass that converts the source artifact into a format the runtime loads; None if it loads it as is.
    conversion: str | None = None


def plan(config: RunConfig, artifact: Artifact, workload: Workload, host: Host) -> tuple[list[VariantSpec], list[str]]:
    """The variants to measure, plus notes on what was skipped and why."""
    notes: list[str] = []
    specs: list[VariantSpec] = []
    if config.runtimes:
        wanted = config.runtimes
    else:
        wanted = []
        for name in registry.RUNTIMES:
            runtime = runtimes.get(name)
            if runtime.available():
                wanted.append(RuntimeSpec(name=name))
            else:
                notes.append(f"skipped runtime {name}: not installed ({runtime.install_hint()})")
    shapes = [s for s in config.workload.shapes if s in workload.strategies]
    for s in config.workload.shapes:
        if s not in workload.strategies:
            notes.append(f"skipped shape strategy '{s.value}': this model's inputs have fixed shapes")
    if not shapes:
        raise ConfigError("none of the requested shape strategies applies to this model", "use --shapes fixed")
    for spec in wanted:
        runtime = runtimes.require(spec.name)
        try:
            conversion = passes.route(artifact.format, runtime.formats)
        except ModelError:
            if config.runtimes:
                raise ModelError(
                    f"runtime {spec.name!r} cannot load a {artifact.format} model, and no pass converts it",
                    "drop it from --runtimes",
                ) from None
            notes.append(f"skipped runtime {spec.name}: it cannot load a {artifact.format} model")
            continue
        knobs = runtime.validate_knobs({"threads": config.threads or host.logical_cores, **spec.knobs})
        custom = {k: v for k, v in spec.knobs.items()}
        suffix = "".join(f"+{k}={v}" for k, v in sorted(custom.items()))
        for precision in _precisions(spec, runtime, host, notes):
            for shape in shapes:
                specs.append(
                    VariantSpec(
                        name=f"{spec.name}/{precision}/{shape.value}{suffix}",
                        runtime=spec.name,
                        precision=precision,
                        shape=shape.value,
                        knobs=knobs.model_dump(mode="json"),
                        conversion=conversion,
                    )
                )
    names = [s.name for s in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"variant {duplicate} is listed twice", "give each runtime entry different knobs")
    if not specs:
        raise ConfigError("no variant to measure", "install a runtime (see `inferarena runtimes`)")
    return specs, notes


def _precisions(spec: RuntimeSpec, runtime, host: Host, notes: list[str]) -> tuple[str, ...]:
    if spec.precisions is None:
        supported = runtime.supported_precisions(host)
        for p in runtime.precisions:
            if p not in supported:
                notes.append(f"skipped {spec.name}/{p}: this CPU has no native {p} support")
        return supported
    for p in spec.precisions:
        if p not in runtime.precisions:
            raise ConfigError(
                f"runtime {spec.name!r} has no precision {p!r}", f"choose from {', '.join(runtime.precisions)}"
            )
    return tuple(spec.precisions)
