"""Which variants a run measures: runtimes × precisions × shape strategies on one device, from the config
and the host.

Decided from plugin declarations only (formats, devices, precisions, knobs), so the core names no runtime.
A runtime that does not run on the run's device is skipped with the reason, as a missing one is.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from inferarena import hardware, passes, registry, runtimes
from inferarena.artifacts import Artifact
from inferarena.config import PipelineSpec, RunConfig, RuntimeSpec, config_error
from inferarena.errors import ConfigError, ModelError
from inferarena.hardware import Gpu, Host
from inferarena.results import Step, VariantSpec
from inferarena.workloads.base import Workload


def plan(config: RunConfig, artifact: Artifact, workload: Workload, host: Host,
         device: str | None = None) -> tuple[list[VariantSpec], list[str]]:
    """The variants to measure, plus notes on what was skipped and why. `device`: the resolved device
    (default: the config's, resolved here; a cuda run without a GPU is a ConfigError)."""
    device = device or hardware.resolve_device(config.device)
    gpu = next(iter(hardware.gpus()), None) if device == "cuda" else None
    notes: list[str] = []
    wanted = _wanted_runtimes(config, artifact, notes)
    shapes = _shapes(config, workload, notes)
    planned: list[tuple[RuntimeSpec, Any, dict]] = []  # (spec, runtime class, knobs) for pipelines below
    unreachable: list[str] = []  # runtimes only a pipeline's output can feed (e.g. ONNX Runtime GenAI's folders)
    off_device: list[str] = []  # runtimes of this run that do not run on its device
    specs: list[VariantSpec] = []
    for spec in wanted:
        runtime = runtimes.require(spec.name)
        reason = _device_reason(runtime, device)
        if reason:
            off_device.append(spec.name)
            notes.append(f"skipped runtime {spec.name}: {reason}")
            continue
        knobs = runtime.validate_knobs({"threads": config.threads or host.logical_cores, **spec.knobs})
        planned.append((spec, runtime, knobs.model_dump(mode="json")))
        try:
            conversion = passes.route(artifact.format, runtime.formats)
        except ModelError:
            unreachable.append(spec.name)
            continue
        specs += _source_variants(spec, runtime, knobs, conversion, artifact, shapes, workload, host, notes, device, gpu)
    for pipeline in config.pipelines_for(artifact.meta):
        try:
            specs += _pipeline_variants(pipeline, planned, artifact, shapes, notes, workload, device, gpu)
        except ConfigError as exc:  # one bad pipeline is skipped with its reason; the sweep goes on
            notes.append(f"skipped {exc.problem} ({exc.fix})")
    _check(config, artifact, specs, unreachable, off_device, wanted, device, notes)
    return specs, notes


def _wanted_runtimes(config: RunConfig, artifact: Artifact, notes: list[str]) -> list[RuntimeSpec]:
    """The config's runtimes, or every installed runtime of the model's kind (the others noted as skipped)."""
    if config.runtimes:
        return config.runtimes
    wanted = []
    kind = artifact.meta.get("kind", "predict")
    for name in registry.RUNTIMES:
        runtime = runtimes.get(name)
        if runtime.kind != kind:  # a text generator is not measured on embedding runtimes, and back
            continue
        if runtime.available():
            wanted.append(RuntimeSpec(name=name))
        else:
            notes.append(f"skipped runtime {name}: not installed ({runtime.install_hint()})")
    return wanted


def _shapes(config: RunConfig, workload: Workload, notes: list[str]) -> list:
    """The shape strategies that apply to this workload's inputs (every one where it shapes them one way only)."""
    shapes = [s for s in config.workload.shapes if s in workload.strategies]
    if not workload.shape_in_name:  # the workload shapes its inputs one way only (generation prompts)
        shapes = list(workload.strategies)
    for s in config.workload.shapes:
        if s not in workload.strategies and workload.shape_in_name:
            notes.append(f"skipped shape strategy '{s.value}': this model's inputs have fixed shapes")
    if not shapes:
        raise ConfigError("none of the requested shape strategies applies to this model", "use --shapes fixed")
    return shapes


def _source_variants(spec: RuntimeSpec, runtime, knobs, conversion, artifact: Artifact, shapes, workload: Workload,
                     host: Host, notes: list[str], device: str, gpu) -> list[VariantSpec]:
    """The source model on one runtime: each precision it runs here × each shape strategy."""
    suffix = "".join(f"+{k}={v}" for k, v in sorted(spec.knobs.items()))
    specs = []
    for precision in _precisions(spec, runtime, host, notes, device, gpu):
        label = artifact.meta.get("precision", "fp32") if precision == "native" else precision
        for shape in shapes:
            specs.append(
                VariantSpec(
                    name=_name(spec.name, label, shape.value, suffix, workload),
                    runtime=spec.name,
                    precision=label,
                    runtime_precision=precision if precision == "native" else None,
                    shape=shape.value,
                    knobs=knobs.model_dump(mode="json"),
                    steps=tuple((c, "{}") for c in conversion),
                    kind=runtime.kind,
                    device=device,
                )
            )
    return specs


def _check(config: RunConfig, artifact: Artifact, specs: list[VariantSpec], unreachable: list[str],
           off_device: list[str], wanted: list[RuntimeSpec], device: str, notes: list[str]) -> None:
    """What makes a plan unusable, as one clear error: a named runtime nothing feeds, a duplicate name, no
    runtime on the device, nothing at all; runtimes that only cannot load the source are noted."""
    for name in unreachable:
        if any(s.runtime == name for s in specs):
            continue
        if config.runtimes:
            raise ModelError(f"runtime {name!r} cannot load {artifact.format} models, and no pass or pipeline of this "
                             "run makes one it loads", "drop it from --runtimes, or add a pipeline for it")
        notes.append(f"skipped runtime {name}: it cannot load {artifact.format} models")
    names = [s.name for s in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"variant {duplicate} is listed twice", "give each runtime entry different knobs")
    if not specs and off_device and len(off_device) == len(wanted):
        on = [n for n in registry.RUNTIMES if device in runtimes.get(n).devices]
        raise ConfigError(f"none of this run's runtimes ({', '.join(off_device)}) runs on {device}",
                          f"pick runtimes that do ({', '.join(on) or 'none yet'}; `inferarena runtimes` lists each "
                          f"one's devices), or use --device cpu")
    if not specs:
        raise ConfigError("no variant to measure", "install a runtime (see `inferarena runtimes`)")


def lossy(steps: tuple[Step, ...]) -> bool:
    """Whether a pass in these steps lowers precision or removes parts of the model on purpose."""
    for name, config_json in steps:
        cls = registry.load(registry.PASSES, name)
        if cls.lossy or cls.precision(cls.Config.model_validate_json(config_json)) in ("int8", "int4", "fp8"):
            return True
    return False


def pipeline_steps(pipeline: PipelineSpec, artifact: Artifact) -> tuple[tuple[Step, ...], str, str | None]:
    """The build steps (conversions added), the format they produce and the precision, checked but not run."""
    steps: list[Step] = []
    fmt, precision = artifact.format, None
    for spec in pipeline.passes:
        cls = registry.load(registry.PASSES, spec.name)
        try:
            conversion = passes.route(fmt, cls.accepts)
        except ModelError:
            raise ConfigError(
                f"pipeline {pipeline.name!r}: pass {spec.name} takes {' or '.join(cls.accepts)}, but gets {fmt}",
                "reorder the passes or add a converting pass",
            ) from None
        steps += [(c, "{}") for c in conversion]
        for c in conversion:  # the format the pass gets: a format-keeping pass (output_format) keeps that one
            fmt = registry.load(registry.PASSES, c).output_format(fmt)
        try:
            pass_config = cls.Config.model_validate(spec.config)
        except ValidationError as exc:
            raise config_error(exc, f"pipeline {pipeline.name!r} pass {spec.name}") from None
        steps.append((spec.name, pass_config.model_dump_json()))
        fmt, precision = cls.output_format(fmt), cls.precision(pass_config) or precision
    return tuple(steps), fmt, precision


def _name(runtime: str, precision: str, shape: str, suffix: str, workload: Workload, pipeline: str | None = None) -> str:
    """runtime/precision[/shape][+knob=value][@pipeline]."""
    return (f"{runtime}/{precision}" + (f"/{shape}" if workload.shape_in_name else "") + suffix
            + (f"@{pipeline}" if pipeline else ""))


def _pipeline_variants(pipeline: PipelineSpec, planned: list, artifact: Artifact, shapes: list, notes: list[str],
                       workload: Workload, device: str = "cpu", gpu: Gpu | None = None):
    """Variants for one pipeline: its passes (plus the conversions they need) on every runtime that loads the result."""
    steps, fmt, precision = pipeline_steps(pipeline, artifact)
    for name, config_json in steps:  # e.g. FP8 on a CPU or a pre-Hopper GPU
        cls = registry.load(registry.PASSES, name)
        reason = cls.unsupported_on(cls.Config.model_validate_json(config_json), device, gpu)
        if reason:
            raise ConfigError(f"pipeline {pipeline.name}: {reason}", "drop it, or run it on a device that has it")
    variants = []
    for spec, runtime, knobs in planned:
        if pipeline.runtimes is not None and spec.name not in pipeline.runtimes:
            continue
        try:  # e.g. a pruned HF model runs on torch as is, and on ONNX runtimes after export
            conversion = passes.route(fmt, runtime.formats)
        except ModelError:
            if pipeline.runtimes is not None:
                raise ConfigError(f"pipeline {pipeline.name!r} makes a {fmt} model, which {spec.name} cannot load",
                                  f"drop {spec.name} from the pipeline's runtimes") from None
            notes.append(f"pipeline {pipeline.name}: skipped on {spec.name}, which cannot load {fmt}")
            continue
        suffix = "".join(f"+{k}={v}" for k, v in sorted(spec.knobs.items()))
        # A runtime that computes in the file's own type (llama.cpp) runs an unchanged precision as the source's.
        native = "native" in runtime.precisions and fmt == artifact.format
        label = precision or (artifact.meta.get("precision", "fp32") if native else "fp32")
        for shape in pipeline.shapes or shapes:
            variants.append(VariantSpec(
                name=_name(spec.name, label, shape.value, suffix, workload, pipeline.name), runtime=spec.name,
                precision=label,
                shape=shape.value, knobs=knobs, steps=steps + tuple((c, "{}") for c in conversion),
                pipeline=pipeline.name, runtime_precision="fp32", lossy=lossy(steps), kind=runtime.kind,
                pipeline_config=pipeline.model_dump_json(), device=device,
            ))
    if not variants and pipeline.runtimes is not None:
        notes.append(f"pipeline {pipeline.name}: not measured, its runtimes ({', '.join(pipeline.runtimes)}) are "
                     "not in this run")
    elif not variants:
        notes.append(f"pipeline {pipeline.name}: no runtime loads its {fmt} output")
    return variants


def _device_reason(runtime, device: str) -> str | None:
    """Why a runtime is not measured on the run's device, or None."""
    if device not in runtime.devices:
        return f"it runs on {', '.join(runtime.devices)}, not {device}"
    return runtime.unavailable_on(device)


def _precisions(spec: RuntimeSpec, runtime, host: Host, notes: list[str], device: str = "cpu",
                gpu: Gpu | None = None) -> tuple[str, ...]:
    offered = runtime.precisions_on(device)
    if spec.precisions is None:
        supported = runtime.supported_precisions(host, device, gpu)
        where = "this CPU" if device == "cpu" else f"this GPU ({gpu.name if gpu else 'unknown'})"
        for p in offered:
            if p not in supported:
                notes.append(f"skipped {spec.name}/{p}: {where} has no native {p} support")
        return supported
    for p in spec.precisions:
        if p not in offered:
            raise ConfigError(
                f"runtime {spec.name!r} has no precision {p!r} on {device}", f"choose from {', '.join(offered)}"
            )
    return tuple(spec.precisions)
