"""llama.cpp through llama-cpp-python: a GGUF file, computed in the file's own weight type.

The precision is the file's (q4_1, q8_0, f16...), so this runtime measures a GGUF as it is; other
types come from the `gguf_quantize` pass. Decoding is greedy (top_k=1, temperature 0), each request
from a fresh KV cache, so prompts are never served from a previous request's cache.

An artifact marked for speculative decoding (passes/decoding.py) runs with a llama-cpp-python draft
model, its drafts verified in one batch: `prompt_lookup` is llama-cpp-python's own n-gram draft;
`draft_model` drafts greedily with a second, cheaper GGUF (its own context and KV cache, emptied for each
request as the target's is): a cheaper build of the same weights, or another model with the same vocabulary
(the pass checks the token strings; the session checks the vocabulary sizes again when it loads).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.evaluators.generation import picked_logprobs
from inferarena.frameworks import llama_cpp as llama
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback


class LlamaKnobs(Knobs):
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per llama.cpp batch (prefill chunk).")
    context: int | None = Field(None, ge=64, description="KV cache size in tokens; default: the run's "
                                "generation.context.")
    flash_attn: bool = Field(False, description="llama.cpp's flash attention kernel.")
    extra_buffers: Literal["auto", "on", "off"] = Field(
        "auto", description="Weights in llama.cpp's extra buffer types (repacked Q4_0/Q4_K/IQ4_NL layouts, the AMX "
        "buffer). auto: off where the build has AMX_INT8, whose buffer crashes (ggml-org/llama.cpp#20824), else on; "
        "on: keep them (a llama.cpp whose AMX path works); off: llama.cpp's --no-repack.")


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
        decoding = artifact.meta.get("decoding") or {}
        if decoding and decoding.get("method") not in ("prompt_lookup", "draft_model"):
            raise ModelError(f"llama_cpp cannot decode with {decoding.get('method')!r}",
                             "it runs prompt_lookup and draft_model")
        # The workload's shape hint is (1, longest sequence): the KV cache it needs.
        return LlamaSession(artifact, knobs, context=knobs.context or input_shapes["input_ids"][-1],
                            decoding=decoding or None)


class LlamaSession(GenerativeSession):
    def __init__(self, artifact: Artifact, knobs: LlamaKnobs, context: int, decoding: dict | None = None):
        self.path, self.knobs, self.context = str(artifact.path), knobs, context
        self.draft = _draft(decoding, artifact, knobs, context) if decoding else None
        self.llm = llama.open_model(self.path, knobs.extra_buffers, n_ctx=context, n_threads=knobs.threads,
                                    n_threads_batch=knobs.threads, n_batch=knobs.n_batch, flash_attn=knobs.flash_attn,
                                    draft_model=self.draft, verbose=False)
        draft_vocab = getattr(self.draft, "vocab", None)
        if draft_vocab is not None and draft_vocab != self.llm.n_vocab():
            self.close()
            raise ModelError(f"the draft model has {draft_vocab} tokens and the target {self.llm.n_vocab()}: its "
                             "drafts would be other tokens", "draft with a model of the target's tokenizer")
        self.weight_bytes = int(artifact.meta.get("weight_bytes") or artifact.path.stat().st_size)
        self.info = {"weight_type": artifact.meta.get("precision"), "n_ctx": context, "n_batch": knobs.n_batch,
                     "threads": knobs.threads, "flash_attn": knobs.flash_attn,
                     "extra_buffers": llama.extra_buffers(knobs.extra_buffers)[1],
                     "system_info": llama.system_info(), "build": llama.build_summary(knobs.extra_buffers)}
        if decoding:
            self.info["decoding"] = dict(decoding)
        self._scorer = None

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        out: list[int] = []
        # generate(reset=True) still reuses a cached prefix of the previous prompt; reset() empties it, so every
        # request pays its whole prefill, as a fresh request to a server would.
        self.llm.reset()
        if self.draft is not None:
            self.draft.new_request()
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
        if self._scorer is None:
            self._scorer = llama.open_model(self.path, self.knobs.extra_buffers, n_ctx=max(64, len(tokens)),
                                            n_threads=self.knobs.threads, n_threads_batch=self.knobs.threads,
                                            n_batch=self.knobs.n_batch, logits_all=True, verbose=False)
        scorer = self._scorer
        scorer.reset()
        scorer.eval(tokens)
        return picked_logprobs(scorer.scores[: len(tokens) - 1], tokens[1:])

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        if self.draft is None:
            return None
        stats = self.draft.stats()
        if reset:
            self.draft.reset()
        return stats

    def close(self) -> None:
        for model in (getattr(self, "llm", None), getattr(self, "_scorer", None), getattr(self.draft, "llm", None)):
            if model is not None:
                model.close()


def _draft(decoding: dict, artifact: Artifact, knobs: LlamaKnobs, context: int):
    """A llama-cpp-python draft model that counts drafted and accepted tokens.

    Between two calls the context grows by the tokens accepted from the previous draft plus the one the
    model adds itself, so accepted = growth - 1 (the last draft of each request is not counted: the
    request stops before it is verified)."""
    from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding

    class Counting(LlamaDraftModel):
        def __init__(self):
            self.reset()

        def reset(self) -> None:
            self.drafted = self.accepted = self.steps = 0
            self.new_request()

        def new_request(self) -> None:
            self._last: tuple[int, int] | None = None  # (context length, draft length) of the previous call
            if getattr(self, "llm", None) is not None:
                self.llm.reset()  # a fresh KV cache for each request, as the target's (LlamaSession.generate)

        def __call__(self, input_ids, /, **kwargs):
            length = int(input_ids.shape[0])
            if self._last is not None and length > self._last[0]:
                prev_len, prev_draft = self._last
                self.drafted += prev_draft
                self.accepted += min(prev_draft, length - prev_len - 1)
                self.steps += 1
            draft = self.propose(input_ids)
            self._last = (length, int(draft.shape[0]))
            return draft

        def stats(self) -> dict | None:
            if not self.steps:
                return None
            return {"method": decoding["method"],
                    "acceptance_rate": self.accepted / self.drafted if self.drafted else 0.0,
                    "draft_tokens_per_step": self.drafted / self.steps,
                    "tokens_per_step": (self.accepted + self.steps) / self.steps, "steps": self.steps}

    class Lookup(Counting):
        def __init__(self):
            super().__init__()
            self.lookup = LlamaPromptLookupDecoding(max_ngram_size=int(decoding.get("max_ngram", 2)),
                                                    num_pred_tokens=int(decoding.get("num_tokens", 10)))

        def propose(self, input_ids):
            return self.lookup(input_ids)

    class Model(Counting):
        """Greedy drafts from a second GGUF, keeping its KV cache for the prefix both contexts share."""

        def __init__(self):
            super().__init__()
            path = artifact.path.parent / decoding["draft_file"]
            if not path.is_file():
                raise ModelError(f"the draft model {path} is missing", "rebuild the variant")
            self.llm = llama.open_model(path, knobs.extra_buffers, n_ctx=context, n_threads=knobs.threads,
                                        n_threads_batch=knobs.threads, n_batch=knobs.n_batch, verbose=False)
            self.k, self.vocab = int(decoding.get("num_tokens", 4)), self.llm.n_vocab()

        def propose(self, input_ids):
            ids, llm = [int(t) for t in input_ids], self.llm
            cached, same = llm.input_ids[: llm.n_tokens], 0
            limit = min(len(cached), len(ids) - 1)  # evaluate at least the last token, for its logits
            while same < limit and cached[same] == ids[same]:
                same += 1
            llm.n_tokens = same  # eval() drops the KV cache from here on
            llm.eval(ids[same:])
            out: list[int] = []
            for _ in range(max(0, min(self.k, context - len(ids) - 1))):
                out.append(int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(self.vocab,)).argmax()))
                if len(out) < self.k:
                    llm.eval(out[-1:])
            return np.asarray(out, dtype=np.intc)

    return Lookup() if decoding["method"] == "prompt_lookup" else Model()
