"""Hugging Face transformers (PyTorch eager) for causal language models, in FP32 or BF16.

Decoding is a plain greedy loop over the model's KV cache, so every token is timed as it appears;
batches (Offline) go through `model.generate` with left padding.
"""

from __future__ import annotations

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback


class TransformersLM(Runtime):
    name = "transformers"
    kind = "generate"
    formats = ("hf_causal_lm",)
    precisions = ("fp32", "bf16")
    modules = ("torch", "transformers")
    distribution = "transformers"
    extra = "llm"

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]):
        return TransformersSession(artifact, precision, knobs)


class TransformersSession(GenerativeSession):
    def __init__(self, artifact: Artifact, precision: str, knobs: Knobs):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(knobs.threads)
        self.torch = torch
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        self.model = AutoModelForCausalLM.from_pretrained(str(artifact.path), dtype=dtype, use_safetensors=True,
                                                          trust_remote_code=False).eval()
        self.pad = artifact.meta.get("eos_token_id") or 0
        self.weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.kv_bytes_per_value = 4 if precision == "fp32" else 2
        self.info = {"dtype": str(dtype), "threads": knobs.threads, "torch": torch.__version__}

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        torch = self.torch
        out: list[int] = []
        with torch.inference_mode():
            ids = torch.tensor([prompt])
            result = self.model(input_ids=ids, use_cache=True)
            while True:
                token = int(result.logits[0, -1].argmax())
                out.append(token)
                if on_token is not None:
                    on_token(token)
                if len(out) >= max_new_tokens:
                    return out
                result = self.model(input_ids=torch.tensor([[token]]), past_key_values=result.past_key_values,
                                    use_cache=True)

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        torch = self.torch
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.pad)
        return [row[width:].tolist() for row in out]

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([tokens])).logits[0, :-1].float()
            picked = torch.log_softmax(logits, dim=-1)[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])]
        return picked.double().numpy()
