"""OpenVINO GenAI's LLMPipeline: a folder from `ov_genai_export` (stateful IR, INT4/INT8 weights, and
the tokenizer IRs the pipeline insists on loading). Prompts go in as token ids (`TokenizedInputs`), so
no chat template is applied; a `StreamerBase` stamps each token id.

On a CPU with BF16 support OpenVINO computes in BF16 and keeps the KV cache in u8 unless told
otherwise; the `inference_precision` knob says which (its default is OpenVINO's own, and the session
info records what ran). Perplexity: LLMPipeline exposes no per-position logits, so it is scored on the
same IR with plain OpenVINO (a stateful infer request, state reset per sequence).

A folder marked for speculative decoding loads with the pipeline's own: prompt lookup (passes/decoding.py;
`prompt_lookup=True`, `num_assistant_tokens`, `max_ngram_size`) or a draft model exported next to it
(`ov_genai_export` with `draft_weight_format`; `draft_model=`). The pipeline does not say how many tokens
it drafted, so only the tokens per verification step (the streamer's calls) are counted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.evaluators.generation import picked_logprobs
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback


class OVGenAIKnobs(Knobs):
    inference_precision: Literal["default", "f32", "bf16"] = Field(
        "default", description="INFERENCE_PRECISION_HINT: default is OpenVINO's choice (bf16 where the CPU has it).")


class OpenVINOGenAI(Runtime):
    name = "openvino_genai"
    kind = "generate"
    formats = ("ov_genai",)
    precisions = ("native",)
    modules = ("openvino_genai",)
    distribution = "openvino-genai"
    extra = "llm"
    Knobs = OVGenAIKnobs

    def load(self, artifact: Artifact, precision: str, knobs: OVGenAIKnobs, input_shapes: dict[str, list[int]]):
        decoding = artifact.meta.get("decoding") or None
        if decoding and decoding.get("method") not in ("prompt_lookup", "draft_model"):
            raise ModelError(f"openvino_genai cannot decode with {decoding.get('method')!r}",
                             "it runs prompt_lookup and draft_model")
        return OVGenAISession(artifact, knobs, decoding)


class OVGenAISession(GenerativeSession):
    def __init__(self, artifact: Artifact, knobs: OVGenAIKnobs, decoding: dict | None = None):
        import openvino as ov
        import openvino_genai as genai

        self.ov, self.genai, self.folder, self.decoding = ov, genai, artifact.path, decoding
        self.properties = {"INFERENCE_NUM_THREADS": knobs.threads}
        if knobs.inference_precision != "default":
            self.properties["INFERENCE_PRECISION_HINT"] = knobs.inference_precision
        extra = {}
        if decoding and decoding["method"] == "prompt_lookup":
            extra = {"prompt_lookup": True}
        elif decoding:
            extra = {"draft_model": genai.draft_model(str(artifact.path / decoding["draft_dir"]), "CPU",
                                                      **self.properties)}
        self.pipe = genai.LLMPipeline(str(artifact.path), "CPU", **self.properties, **extra)
        self._steps = self._tokens = 0
        self.weight_bytes = int(artifact.meta.get("weight_bytes") or 0)
        self.kv_bytes_per_value = 1 if knobs.inference_precision == "default" else 2  # u8 KV cache by default
        applied = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
        self.info = {"weights": artifact.meta.get("precision"), "threads": knobs.threads,
                     "inference_precision": applied.to_string() if knobs.inference_precision == "default"
                     else knobs.inference_precision,
                     "exporter": artifact.meta.get("exporter")}
        if decoding:
            self.info["decoding"] = dict(decoding)
        self._scorer = None
        self._streamer_class = _streamer_class(genai)

    def _config(self, tokens: int):
        config = self.genai.GenerationConfig(max_new_tokens=tokens, min_new_tokens=tokens, ignore_eos=True,
                                             do_sample=False, apply_chat_template=False)
        if self.decoding:
            config.num_assistant_tokens = int(self.decoding.get("num_tokens", 10))
            if self.decoding["method"] == "prompt_lookup":
                config.max_ngram_size = int(self.decoding.get("max_ngram", 2))
        return config

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        ids = np.asarray([prompt], dtype=np.int64)
        inputs = self.genai.TokenizedInputs(self.ov.Tensor(ids), self.ov.Tensor(np.ones_like(ids)))
        streamer = None
        if on_token is not None or self.decoding:
            streamer = self._streamer_class(on_token or (lambda token: None))
        result = self.pipe.generate(inputs, self._config(max_new_tokens), streamer)
        if self.decoding:
            self._steps += max(0, streamer.calls - 1)  # the first call carries the prefill's token
            self._tokens += max(0, streamer.tokens - 1)
        return [int(t) for t in result.tokens[0]][:max_new_tokens]

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        steps, tokens = self._steps, self._tokens
        if reset:
            self._steps = self._tokens = 0
        if not self.decoding or not steps:
            return None
        return {"method": self.decoding["method"], "tokens_per_step": tokens / steps, "steps": steps}

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        if self._scorer is None:
            compiled = self.ov.Core().compile_model(str(self.folder / "openvino_model.xml"), "CPU", self.properties)
            self._scorer = compiled.create_infer_request()
        request = self._scorer
        request.reset_state()
        ids = np.asarray([tokens], dtype=np.int64)
        request.infer({"input_ids": ids, "attention_mask": np.ones_like(ids),
                       "position_ids": np.arange(len(tokens), dtype=np.int64)[None],
                       "beam_idx": np.zeros(1, dtype=np.int32)})
        return picked_logprobs(request.get_tensor("logits").data[0, :-1], tokens[1:])


def _streamer_class(genai):
    class TokenStreamer(genai.StreamerBase):
        """Hands each new token id to the callback (this version passes a list of ids, or one id)."""

        def __init__(self, on_token: TokenCallback):
            super().__init__()
            self.on_token, self.calls, self.tokens = on_token, 0, 0

        def write(self, token):
            self.calls += 1
            for t in [token] if isinstance(token, int) else token:
                self.tokens += 1
                self.on_token(int(t))
            return genai.StreamingStatus.RUNNING

        def end(self):
            pass

    return TokenStreamer
