"""Prompts for generative models: token ids cut from a real text corpus, with prompt and output lengths
drawn from the run's `generation` distributions.

The default corpus is the Lee news corpus from gensim's test data (50 short news articles, fetched
once with the task metrics' data). The first 40 articles give the prompts; the last 10 are held out
as the perplexity text, so no prompt is scored. A user corpus (`--texts`) is split the same way.
Prompts are tokenized once, here, with the model's own tokenizer: every runtime gets the same ids.

`generation.prompts` says what a prompt asks. `continue` (the default): the excerpt alone, which the
model continues in its own words. `grounded`: the excerpt, then an instruction to repeat it
(GROUNDED_INSTRUCTION), so the output copies the input, as answers grounded in retrieved passages
do. Speculative decoding from the prompt pays on the second and may not on the first; both are
measured as they are.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.config import GenerationConfig, LengthDist, ShapeStrategy, WorkloadConfig
from inferarena.errors import ConfigError, InferarenaError
from inferarena.workloads.base import Batch, Workload
from inferarena.workloads.corpus import read_texts, stdlib_paragraphs

HELD_OUT = 0.2  # share of the corpus's documents kept for perplexity
GROUNDED_INSTRUCTION = "\n\nRepeat the text above, word for word:\n"


class PromptWorkload(Workload):
    strategies = (ShapeStrategy.dynamic,)  # prompts are fed as they are; padding is the runtime's business
    shape_in_name = False  # one strategy only, so variant names leave it out
    input_names = ["input_ids"]
    max_batch = None

    def __init__(self, prompts: list[list[int]], outputs: list[int], perplexity_text: list[int], context: int,
                 source: str, notes: list[str], tokenizer_path: str | None = None, style: str = "continue"):
        self.prompts, self.outputs, self.perplexity_text = prompts, outputs, perplexity_text
        self.style = style
        self.tokenizer_path = tokenizer_path
        self.context, self.source, self.notes = context, source, notes

    @classmethod
    def build(cls, artifact: Artifact, config: WorkloadConfig, generation: GenerationConfig) -> "PromptWorkload":
        from tokenizers import Tokenizer

        notes: list[str] = []
        texts_path = config.texts or config.inputs
        if texts_path is not None:
            docs, source = read_texts(texts_path, 10_000, config.seed), str(texts_path)
        else:
            docs, source = _lee_corpus(notes)
        if len(docs) < 2:
            raise ConfigError(f"the corpus {source} has {len(docs)} document(s)", "give at least two texts")
        tokenizer = Tokenizer.from_file(artifact.meta["tokenizer"])
        encoded = [tokenizer.encode(d, add_special_tokens=False).ids for d in docs]
        split = max(1, int(len(encoded) * (1 - HELD_OUT)))
        prompt_docs = [ids for ids in encoded[:split] if ids]
        held_out = [t for ids in encoded[split:] for t in ids][: generation.perplexity_tokens]
        rng = random.Random(config.seed)
        suffix = (tokenizer.encode(GROUNDED_INSTRUCTION, add_special_tokens=False).ids
                  if generation.prompts == "grounded" else [])
        longest = generation.prompt_tokens.max + len(suffix) + generation.output_tokens.max
        if longest > generation.context:
            raise ConfigError(f"prompts of up to {generation.prompt_tokens.max + len(suffix)} tokens plus "
                              f"{generation.output_tokens.max} generated do not fit generation.context "
                              f"{generation.context}", "raise generation.context or shorten the lengths")
        prompts, outputs = [], []
        for _ in range(config.num_samples):
            length = draw(generation.prompt_tokens, rng)
            first = rng.randrange(len(prompt_docs))
            text = list(prompt_docs[first])
            while len(text) < length:  # a short article: go on into the next ones
                first = (first + 1) % len(prompt_docs)
                text += prompt_docs[first]
            start = rng.randrange(len(text) - length + 1)
            prompt = text[start : start + length]
            prompts.append(prompt + suffix)
            outputs.append(draw(generation.output_tokens, rng))
        if len(held_out) < generation.perplexity_tokens:
            notes.append(f"perplexity scored on {len(held_out)} held-out tokens (fewer than the "
                         f"{generation.perplexity_tokens} asked: the corpus is short)")
        return cls(prompts, outputs, held_out, generation.context, source, notes, artifact.meta["tokenizer"],
                   generation.prompts)

    def __len__(self) -> int:
        return len(self.prompts)

    def prompt(self, index: int) -> list[int]:
        return self.prompts[index]

    def output_tokens(self, index: int) -> int:
        return self.outputs[index]

    def length(self, index: int) -> int:
        return len(self.prompts[index])

    def collate(self, indices: Sequence[int], strategy: ShapeStrategy) -> Batch:
        return {"input_ids": np.asarray(self.prompts[indices[0]], dtype=np.int64)[None]} if len(indices) == 1 else {
            "input_ids": np.asarray([self.prompts[i] for i in indices], dtype=object)}

    def input_shapes(self, strategy: ShapeStrategy) -> dict[str, list[int]]:
        return {"input_ids": [1, self.context]}  # (one request, the longest sequence the KV cache holds)

    def describe(self) -> dict[str, Any]:
        lengths, outputs = np.array([len(p) for p in self.prompts]), np.array(self.outputs)
        return {"kind": "prompts", "prompts": self.style, "samples": len(self), "source": self.source,
                "prompt_tokens_p50": float(np.median(lengths)), "prompt_tokens_p90": float(np.percentile(lengths, 90)),
                "prompt_tokens_max": int(lengths.max()), "output_tokens_p50": float(np.median(outputs)),
                "output_tokens_max": int(outputs.max()), "perplexity_tokens": len(self.perplexity_text),
                "context": self.context}


def draw(dist: LengthDist, rng: random.Random) -> int:
    if dist.min == dist.max:
        return dist.min
    return int(min(dist.max, max(dist.min, round(dist.median * np.exp(rng.gauss(0.0, 0.5))))))


def _lee_corpus(notes: list[str]) -> tuple[list[str], str]:
    from inferarena.evaluators.data import ensure_files
    from inferarena.evaluators.task import DEFAULT_DATA_DIR

    try:
        folder = ensure_files(["lee.cor"], DEFAULT_DATA_DIR / "gensim")
    except InferarenaError as exc:
        notes.append(f"prompts from Python docstrings: the Lee news corpus is unavailable ({exc.problem})")
        return stdlib_paragraphs(200, 0), "python stdlib docstrings"
    docs = (folder / "lee.cor").read_text(encoding="latin-1").splitlines()
    return [d.strip() for d in docs if d.strip()], "Lee news corpus (gensim test data)"
