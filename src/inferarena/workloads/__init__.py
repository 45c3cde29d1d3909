"""Workloads: the inputs a model is measured on, and how samples become batches (shape strategies)."""

from __future__ import annotations

from inferarena.artifacts import Artifact
from inferarena.config import GenerationConfig, WorkloadConfig
from inferarena.workloads.base import Workload


def build(artifact: Artifact, config: WorkloadConfig, generation: GenerationConfig | None = None) -> Workload:
    """Pick the workload for what the model consumes; the core never looks at modality itself."""
    kind = artifact.meta.get("input_kind")
    if kind == "prompt":
        from inferarena.workloads.prompts import PromptWorkload

        return PromptWorkload.build(artifact, config, generation or GenerationConfig())
    if kind == "text":
        from inferarena.workloads.text import TextWorkload

        return TextWorkload.build(artifact, config)
    if kind == "image":
        from inferarena.workloads.image import ImageWorkload

        return ImageWorkload.build(artifact, config)
    from inferarena.workloads.tensor import TensorWorkload

    return TensorWorkload.build(artifact, config)
