"""Passes: pure maps from an artifact to a new artifact at a path, cached by content hash."""

from __future__ import annotations

from inferarena import registry
from inferarena.errors import ModelError


def route(source_format: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The converting passes, in order, that turn `source_format` into one of `wanted`: () if a runtime
    takes the source as is. The shortest chain wins (e.g. torch_module -> tf_savedmodel -> tflite);
    decided from the passes' declarations only, nothing is imported beyond their classes."""
    if source_format in wanted:
        return ()
    converters = [(name, cls) for name in registry.PASSES
                  if getattr(cls := registry.load(registry.PASSES, name), "converts", False)]
    frontier, seen = [(source_format, ())], {source_format}
    while frontier:
        step = []
        for fmt, chain in frontier:
            for name, cls in converters:
                if fmt not in cls.accepts:
                    continue
                for out in cls.produces:
                    if out in wanted:
                        return (*chain, name)
                    if out not in seen:
                        seen.add(out)
                        step.append((out, (*chain, name)))
        frontier = step
    raise ModelError(f"no pass converts {source_format} into {' or '.join(wanted)}", "pick another runtime")


def apply(steps: tuple, artifact, cache_dir, context) -> tuple:
    """Apply each (pass name, config JSON) step in turn, every one cached by content hash.

    Returns the final artifact and each step's `PassRun` node: the pass, its config, whether it came from
    the cache, its seconds, and the artifact it started from (`parent`) and made (`output`), the
    lineage the store keeps (the tail of the artifact's own `lineage`)."""
    import dataclasses
    import time

    from inferarena.artifacts import PassRun

    applied: list[PassRun] = []
    for name, config_json in steps:
        pass_cls = registry.load(registry.PASSES, name)
        config = pass_cls.Config.model_validate_json(config_json)
        started = time.perf_counter()
        parent, before = str(artifact.path), artifact.lineage
        decoding = artifact.meta.get("decoding")
        artifact = pass_cls().cached_run(artifact, config, cache_dir, context)
        if decoding and pass_cls.converts and "decoding" not in artifact.meta:
            # A conversion changes the file format, not how the model is decoded (see passes/decoding.py).
            artifact = type(artifact)(artifact.path, artifact.format, {**artifact.meta, "decoding": decoding},
                                      artifact.lineage)
        node = PassRun(name, config.model_dump(mode="json"), parent, str(artifact.path), bool(artifact.meta["cached"]),
                       round(time.perf_counter() - started, 2))
        artifact = dataclasses.replace(artifact, lineage=(*before, node))  # this build's nodes, not the cache's
        applied.append(node)
    return artifact, applied
