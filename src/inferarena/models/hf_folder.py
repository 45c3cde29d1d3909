"""A local Hugging Face encoder folder (config.json + weights + tokenizer.json), served as embeddings."""

from __future__ import annotations

from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.models.base import ModelSource
from inferarena.models.hf_encoder import encoder_artifact


class HFFolder(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return Path(spec).is_dir()

    def load(self, spec: str) -> Artifact:
        return encoder_artifact(Path(spec).resolve(), name=Path(spec).name)
