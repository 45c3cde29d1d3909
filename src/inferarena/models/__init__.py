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
        f"model {spec!r} is neither a bundled model nor a model file or folder inferarena reads",
        f"use one of: {', '.join(bundled_names())}, a .onnx, .xml (OpenVINO IR), .tflite, .keras or .gguf file, a SavedModel folder, "
        "or a Hugging Face folder with config.json",
    )


def bundled_names() -> list[str]:
    return [n for n in registry.MODEL_SOURCES if registry.load(registry.MODEL_SOURCES, n).bundled]
