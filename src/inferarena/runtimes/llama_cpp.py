"""llama.cpp through llama-cpp-python: a GGUF file, computed in the file's own weight type.

The precision is the file's (q4_1, q8_0, f16...), so this runtime measures a GGUF as it is; other
types come from the `gguf_quantize` pass. Decoding is greedy (top_k=1, temperature 0), each request
from a fresh KV cache, so prompts are never served from a previous request's cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.evaluators.generation import picked_logprobs
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback


class LlamaKnobs(Knobs):
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per llama.cpp batch (prefill chunk).")
    context: int | None = Field(None, ge=64, description="KV cache size in tokens; default: the run's "
                                "generation.context.")
    flash_attn: bool = Field(False, description="llama.cpp's flash attention kernel.")


class LlamaCpp(Runtime):
    name = "llama_cpp"
    kind = "generate"
    formats = ("gguf",)
    precisions = ("native",)  # the GGUF's own type
    modules = ("llama_cpp",)
    distribution = "llama-cpp-python"
    extra = "llm"
    Knobs = LlamaKnobs

    def load(self, artifact: Artifact, precision: str, knobs: LlamaKnobs, input_shapes: dict[str, list[int]]):
        # The workload's shape hint is (1, longest sequence): the KV cache it needs.
        return LlamaSession(artifact, knobs, context=knobs.context or input_shapes["input_ids"][-1])


class LlamaSession(GenerativeSession):
    def __init__(self, artifact: Artifact, knobs: LlamaKnobs, context: int):
        from llama_cpp import Llama

        self.path, self.knobs, self.context = str(artifact.path), knobs, context
        self.llm = Llama(self.path, n_ctx=context, n_threads=knobs.threads, n_threads_batch=knobs.threads,
                         n_batch=knobs.n_batch, flash_attn=knobs.flash_attn, verbose=False)
        self.weight_bytes = int(artifact.meta.get("weight_bytes") or artifact.path.stat().st_size)
        self.info = {"weight_type": artifact.meta.get("precision"), "n_ctx": context, "n_batch": knobs.n_batch,
                     "threads": knobs.threads, "flash_attn": knobs.flash_attn,
                     "system_info": _system_info()}
        self._scorer = None

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        out: list[int] = []
        # generate(reset=True) still reuses a cached prefix of the previous prompt; reset() empties it, so every
        # request pays its whole prefill, as a fresh request to a server would.
        self.llm.reset()
        for token in self.llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0,
                                       reset=True):
            out.append(int(token))
            if on_token is not None:
                on_token(out[-1])
            if len(out) >= max_new_tokens:
                break
        return out

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        # Logits of every position need `logits_all`, which costs n_ctx × vocab floats: a second,
        # short-lived model made only for scoring.
        from llama_cpp import Llama

        if self._scorer is None:
            self._scorer = Llama(self.path, n_ctx=max(64, len(tokens)), n_threads=self.knobs.threads,
                                 n_threads_batch=self.knobs.threads, n_batch=self.knobs.n_batch, logits_all=True,
                                 verbose=False)
        scorer = self._scorer
        scorer.reset()
        scorer.eval(tokens)
        return picked_logprobs(scorer.scores[: len(tokens) - 1], tokens[1:])

    def close(self) -> None:
        for model in (self.llm, self._scorer):
            if model is not None:
                model.close()


def _system_info() -> Any:
    try:
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    except Exception:  # noqa: BLE001 - informational only
        return None
