"""Load an `hf_encoder` artifact as a torch module that outputs L2-normalized mean-pooled embeddings.

Pooling and normalization live inside the module, so every runtime times them as part of inference
(the export pass bakes them into the ONNX graph). Imports torch: call only inside a worker.
"""

from __future__ import annotations

import os
from pathlib import Path


def load_embedding_module(folder: Path, uses_token_type_ids: bool):
    # The folder is local; never let transformers reach for a hub from inside a measurement worker.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    import json

    if "heads_per_layer" in json.loads((Path(folder) / "config.json").read_text()):
        # Head-pruned by inferarena: our own class, never code from the folder (see models/pruned_bert.py).
        from inferarena.models.pruned_bert import PrunedBertModel

        encoder = PrunedBertModel.from_pretrained(str(folder)).eval()
    else:
        encoder = AutoModel.from_pretrained(str(folder)).eval()

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
