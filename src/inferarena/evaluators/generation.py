"""Fidelity of a generative variant against the FP32 reference: greedy-token agreement and perplexity.

- Token agreement: each fidelity prompt is decoded greedily by the variant and by the reference. A
  prompt's agreement is the share of the reference's tokens reproduced before the first difference
  (after one different token the two continue from different texts, so later matches mean little).
  `token_agreement` is the mean over prompts, `exact_match` the share of prompts fully reproduced,
  and `first_divergence_mean` the mean position of the first difference (the length when none).
- Perplexity: exp(mean negative log-likelihood) of held-out corpus text, teacher-forced, next to the
  reference's on the same tokens. Runtimes that expose no logits report none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class GenerationFidelity:
    token_agreement: float
    exact_match: float
    first_divergence_mean: float
    prompts: int
    tokens_per_prompt: int
    perplexity: float | None = None
    perplexity_reference: float | None = None
    perplexity_delta_pct: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def first_divergence(got: list[int], want: list[int]) -> int:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return i
    return min(len(got), len(want))


def picked_logprobs(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """log softmax(logits[i])[targets[i]] for each row: the log-probability each target token got."""
    logits = np.asarray(logits, dtype=np.float64).reshape(len(targets), -1)
    peak = logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[:, 0]
    return logits[np.arange(len(targets)), targets] - log_z


def perplexity(logprobs: np.ndarray | None) -> float | None:
    if logprobs is None or len(logprobs) == 0:
        return None
    return float(math.exp(-float(np.mean(logprobs))))


def score(outputs: list[list[int]], reference: list[list[int]], ppl: float | None,
          ppl_reference: float | None) -> GenerationFidelity:
    positions = [first_divergence(got, want) for got, want in zip(outputs, reference)]
    lengths = [len(want) for want in reference]
    delta = 100.0 * (ppl / ppl_reference - 1.0) if ppl is not None and ppl_reference else None
    return GenerationFidelity(
        token_agreement=float(np.mean([p / n for p, n in zip(positions, lengths)])),
        exact_match=float(np.mean([p == n for p, n in zip(positions, lengths)])),
        first_divergence_mean=float(np.mean(positions)), prompts=len(reference),
        tokens_per_prompt=max(lengths), perplexity=ppl, perplexity_reference=ppl_reference,
        perplexity_delta_pct=delta)
