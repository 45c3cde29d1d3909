"""BERT whose layers keep different numbers of attention heads (written by inferarena).

The prune pass copies this file into every head-pruned folder (`auto_map`), so other tools load
it with trust_remote_code; inferarena itself imports it from here, running no code from the folder.

transformers 5 dropped BERT's `pruned_heads`; this resizes each layer's attention to
`config.heads_per_layer` so the checkpoint's smaller weights load into it.
"""
import torch
from transformers import BertModel


class PrunedBertModel(BertModel):
    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        size = config.hidden_size // config.num_attention_heads
        for layer, heads in zip(self.encoder.layer, config.heads_per_layer):
            attention, width = layer.attention, heads * size
            for name in ("query", "key", "value"):
                setattr(attention.self, name, torch.nn.Linear(config.hidden_size, width))
            attention.self.num_attention_heads, attention.self.all_head_size = heads, width
            attention.output.dense = torch.nn.Linear(width, config.hidden_size)
