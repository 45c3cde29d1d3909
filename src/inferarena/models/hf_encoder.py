"""The `hf_encoder` format: check and describe an encoder folder as an Artifact, and load one as a
torch module that outputs L2-normalized mean-pooled embeddings.

Pooling and normalization live inside the module, so every runtime times them as part of inference
(the export pass bakes them into the ONNX graph). Loading imports torch: call it only inside a worker.
A format, not a model source: the sources (hf_folder, minilm) and the passes that write encoder
folders (prune_structured) describe them here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError

# safetensors only: a pytorch_model.bin is a pickle, which runs code when it is loaded.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def encoder_artifact(folder: Path, name: str) -> Artifact:
    """Check an encoder folder and describe it; the task is sentence embedding (mean pool + L2 norm)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{folder} has no config.json", "point --model at a Hugging Face model folder")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_path} is corrupt ({exc})", "restore the file from the model's source") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_path} is not a JSON object", "restore the file from the model's source")
    if not any((folder / w).is_file() for w in WEIGHT_FILES):
        if (folder / "pytorch_model.bin").is_file():
            raise ModelError(f"{folder} holds only pytorch_model.bin, a pickle that can run code when it is loaded, "
                             "and inferarena loads safetensors only",
                             "convert it once where you trust the file: AutoModel.from_pretrained(F).save_pretrained(F)")
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


def load_embedding_module(folder: Path, uses_token_type_ids: bool, attn_implementation: str | None = None):
    """The encoder with mean pooling and L2 normalisation, as sentence-transformers computes it.
    `attn_implementation` (e.g. "sdpa") is passed to transformers where given; by default it picks."""
    # The folder is local; never let transformers reach for a hub from inside a measurement worker.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    if "heads_per_layer" in json.loads((Path(folder) / "config.json").read_text()):
        # Head-pruned by inferarena: our own class, never code from the folder (see models/pruned_bert.py).
        from inferarena.models.pruned_bert import PrunedBertModel

        encoder = PrunedBertModel.from_pretrained(str(folder), use_safetensors=True).eval()
    else:  # no code from the folder, no pickle: safetensors weights and transformers' own classes
        chosen = {"attn_implementation": attn_implementation} if attn_implementation else {}
        encoder = AutoModel.from_pretrained(str(folder), use_safetensors=True, trust_remote_code=False,
                                            **chosen).eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"token_type_ids": token_type_ids} if uses_token_type_ids else {}
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return SentenceEmbedding(encoder).eval()


def input_names(uses_token_type_ids: bool) -> list[str]:
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_token_type_ids else [])


OUTPUT_NAME = "sentence_embedding"
