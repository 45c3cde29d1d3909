"""A local Hugging Face encoder folder (config.json + weights + tokenizer.json), served as embeddings."""

from __future__ import annotations

import json
from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.models.base import ModelSource

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class HFFolder(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return Path(spec).is_dir()

    def load(self, spec: str) -> Artifact:
        return encoder_artifact(Path(spec).resolve(), name=Path(spec).name)


def encoder_artifact(folder: Path, name: str) -> Artifact:
    """Check an encoder folder and describe it; the task is sentence embedding (mean pool + L2 norm)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{folder} has no config.json", "point --model at a Hugging Face model folder")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_path} is corrupt ({exc})", "restore the file from the model's source") from None
    if not any((folder / w).is_file() for w in WEIGHT_FILES):
        raise ModelError(f"{folder} holds no weights ({' or '.join(WEIGHT_FILES)})", "copy the weights into it")
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{folder} has no tokenizer.json", "save the tokenizer with a fast tokenizer")
    return Artifact(
        path=folder,
        format="hf_encoder",
        meta={
            "name": name,
            "input_kind": "text",
            "task": "embedding",
            "tokenizer": str(folder / "tokenizer.json"),
            "model_type": config.get("model_type", "unknown"),
            "uses_token_type_ids": config.get("type_vocab_size", 0) > 1,
        },
    )
