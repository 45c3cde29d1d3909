"""Model sources: turn a --model spec (bundled name or path) into an Artifact."""

from __future__ import annotations

from inferarena import registry
from inferarena.artifacts import Artifact
from inferarena.errors import ModelError


def resolve(spec: str) -> Artifact:
    """Load `spec` with the first registered source that claims it."""
    for name in registry.MODEL_SOURCES:
        source = registry.load(registry.MODEL_SOURCES, name)
        if source.claims(spec):
            return source().load(spec)
    raise ModelError(
        f"model {spec!r} is neither a bundled model nor an existing .onnx file or Hugging Face folder",
        f"use one of: {', '.join(bundled_names())}, a path to a .onnx file, or a folder with config.json",
    )


def bundled_names() -> list[str]:
    return [n for n in registry.MODEL_SOURCES if registry.load(registry.MODEL_SOURCES, n).bundled]
