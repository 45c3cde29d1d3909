"""Tokenized text workloads: fixed (pad to max length), dynamic (pad to the batch's longest) and
bucketed (pad to the next bucket edge) shapes.

Bucketing gets most of dynamic shapes' saving on short inputs while keeping the number of distinct
shapes a runtime sees small (each new shape can cost a re-plan or a recompile). The edges are the
workload's own length quantiles, rounded up to multiples of 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.config import ShapeStrategy, WorkloadConfig
from inferarena.errors import ConfigError
from inferarena.workloads.base import Batch, Workload
from inferarena.workloads.corpus import read_texts, stdlib_paragraphs


class TextWorkload(Workload):
    strategies = (ShapeStrategy.fixed, ShapeStrategy.bucketed, ShapeStrategy.dynamic)  # least padding last
    BUCKET_QUANTILES = (50, 75, 90)

    def __init__(self, tokens: list[dict[str, np.ndarray]], input_names: list[str], max_length: int,
                 pad_id: int, source: str, tokenizer_path: str | None = None):
        self.tokens = tokens
        self.input_names = input_names
        self.max_length = max_length
        self.pad_id = pad_id
        self.source = source
        self.tokenizer_path = tokenizer_path
        self.notes = []
        self.buckets = bucket_edges([len(t["input_ids"]) for t in tokens], max_length, self.BUCKET_QUANTILES)

    @classmethod
    def build(cls, artifact: Artifact, config: WorkloadConfig) -> "TextWorkload":
        if config.inputs is not None and config.inputs.suffix == ".npz":
            raise ConfigError(
                f"{artifact.meta['name']} takes text, not tensors from {config.inputs.name}",
                "pass a .txt or .jsonl corpus with --inputs",
            )
        texts_path = config.texts or config.inputs
        if texts_path is not None:
            texts, source = read_texts(texts_path, config.num_samples, config.seed), str(texts_path)
        else:
            texts, source = stdlib_paragraphs(config.num_samples, config.seed), "python stdlib docstrings"
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if artifact.meta.get("uses_token_type_ids") else [])
        tokenizer, tokens = _tokenize(artifact.meta["tokenizer"], texts, config.max_length, names)
        pad_id = next((i for t in ("[PAD]", "<pad>") if (i := tokenizer.token_to_id(t)) is not None), 0)
        return cls(tokens, names, config.max_length, pad_id, source, artifact.meta["tokenizer"])

    def __len__(self) -> int:
        return len(self.tokens)

    def collate(self, indices: Sequence[int], strategy: ShapeStrategy) -> Batch:
        return self._pad([self.tokens[i] for i in indices], strategy)

    def _pad(self, rows: list[dict[str, np.ndarray]], strategy: ShapeStrategy) -> Batch:
        longest = max(len(row["input_ids"]) for row in rows)
        if strategy is ShapeStrategy.fixed:
            width = self.max_length
        elif strategy is ShapeStrategy.bucketed:
            width = next(edge for edge in self.buckets if edge >= longest)
        else:
            width = longest
        batch = {}
        for name in self.input_names:
            array = np.full((len(rows), width), self.pad_id if name == "input_ids" else 0, dtype=np.int64)
            for j, row in enumerate(rows):
                array[j, : len(row[name])] = row[name]
            batch[name] = array
        return batch

    def length(self, index: int) -> int:
        return len(self.tokens[index]["input_ids"])

    def unpadded_shapes(self, index: int) -> tuple:
        return tuple((name, (1, self.length(index))) for name in self.input_names)

    def encode_texts(self, texts: list[str], strategy: ShapeStrategy = ShapeStrategy.dynamic) -> Batch | None:
        """Tokenize, truncate to max_length and pad as `strategy` pads (fixed-shape sessions need fixed)."""
        if self.tokenizer_path is None:
            return None
        _, rows = _tokenize(self.tokenizer_path, texts, self.max_length, self.input_names)
        return self._pad(rows, ShapeStrategy.fixed if strategy is ShapeStrategy.fixed else ShapeStrategy.dynamic)

    def input_shapes(self, strategy: ShapeStrategy) -> dict[str, list[int]]:
        width = self.max_length if strategy is ShapeStrategy.fixed else -1
        return {name: [-1, width] for name in self.input_names}

    def describe(self) -> dict[str, Any]:
        lengths = np.array([len(row["input_ids"]) for row in self.tokens])
        return {
            "kind": "text",
            "source": self.source,
            "samples": len(self.tokens),
            "max_length": self.max_length,
            "tokens_p50": float(np.percentile(lengths, 50)),
            "tokens_p90": float(np.percentile(lengths, 90)),
            "tokens_max": int(lengths.max()),
            "bucket_edges": self.buckets,
        }


def _tokenize(path: str, texts: list[str], max_length: int, names: list[str]):
    """(tokenizer, one dict of int64 arrays per text), truncated to max_length and unpadded."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    rows = []
    for enc in tokenizer.encode_batch(texts):
        row = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
        rows.append({name: np.asarray(row[name], dtype=np.int64) for name in names})
    return tokenizer, rows


def bucket_edges(lengths: list[int], max_length: int, quantiles: tuple[int, ...]) -> list[int]:
    """Padding lengths for `bucketed`: the length quantiles rounded up to a multiple of 8, then the longest."""
    if not lengths:
        return [max_length]
    longest = max(lengths)
    return sorted({min(longest, -(-int(np.percentile(lengths, q)) // 8) * 8) for q in quantiles} | {longest})
