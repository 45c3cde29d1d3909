"""Hugging Face transformers (PyTorch eager) for causal language models, in FP32 or BF16.

Decoding is a plain greedy loop over the model's KV cache, so every token is timed as it appears;
batches (Offline) go through `model.generate` with left padding.

An artifact's `decoding` meta (set by passes/decoding.py) changes how tokens are produced:
- `prompt_lookup`: transformers' own prompt-lookup speculative decoding (`prompt_lookup_num_tokens`),
  greedy, so lossless; tokens reach `on_token` as each verification step accepts them.
- `griffin` / `hyper_griffin`: FFNs sliced to the neurons the prompt needs (adaptive/griffin.py).
These serve requests one at a time (no batching), and report their `adaptive.*` figures.

A folder with a torchao recipe (passes/torchao_quant.py) is quantized on load, GRIFFIN's slices too.

On CUDA (`--device cuda`): FP32, BF16 or FP16 weights on the GPU with SDPA attention; the `cache` knob
picks a static KV cache (preallocated, what `torch.compile` and CUDA graphs need) and `compile` compiles
the forward pass through `generate`'s own `compile_config`. Requests then go through `model.generate`
(greedy, a streamer hands each token to `on_token` as it reaches the host), batches too (Offline). A
torchao recipe quantizes a BF16 copy on the GPU. The decoding methods above stay on the CPU. Not yet run
on a GPU (docs/guide.md, "GPUs").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, ModelError
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback

DECODING = ("prompt_lookup", "griffin", "hyper_griffin")  # the `decoding` methods this runtime runs


class TransformersKnobs(Knobs):
    cache: Literal["dynamic", "static"] = Field(
        "dynamic", description="cuda: the KV cache. dynamic grows with each token; static is preallocated for the "
        "longest request seen (what torch.compile and CUDA graphs need). The CPU always grows it.")
    compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = Field(
        "none", description="cuda: torch.compile the forward pass inside generate (implies cache=static); "
        "reduce-overhead adds CUDA graphs. The CPU never compiles, so no search space is declared (a CPU search "
        "would measure the same thing twice).")


class TransformersLM(Runtime):
    name = "transformers"
    kind = "generate"
    formats = ("hf_causal_lm",)
    precisions = ("fp32", "bf16")
    devices = ("cpu", "cuda")
    device_precisions = {"cuda": ("fp32", "bf16", "fp16")}
    modules = ("torch", "transformers")
    distribution = "transformers"
    extra = "llm"
    Knobs = TransformersKnobs

    @classmethod
    def unavailable_on(cls, device: str) -> str | None:
        import importlib.metadata

        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return None
        if device == "cuda" and torch_version.endswith("+cpu"):
            return f"torch {torch_version} is a CPU-only build (install a CUDA build of torch)"
        return None

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]],
             device: str = "cpu"):
        decoding = artifact.meta.get("decoding") or {}
        method = decoding.get("method")
        if method is None:
            return TransformersSession(artifact, precision, knobs, device)
        if device != "cpu":
            raise ConfigError(f"the {method} decoding runs on the CPU only here", "measure it with --device cpu")
        if method not in DECODING:
            raise ModelError(f"transformers cannot decode with {method!r}", f"it runs {', '.join(DECODING)}")
        if method == "prompt_lookup":
            return PromptLookupSession(artifact, precision, knobs, decoding)
        return GriffinSession(artifact, precision, knobs, decoding)


class TransformersSession(GenerativeSession):
    def __init__(self, artifact: Artifact, precision: str, knobs: Knobs, device: str = "cpu"):
        import torch
        from transformers import AutoModelForCausalLM

        from inferarena.frameworks.torchao import apply_recipe, read_recipe, weight_bytes

        torch.set_num_threads(knobs.threads)
        self.torch = torch
        self.device = device
        recipe = read_recipe(artifact.path)
        if device != "cpu" and recipe:  # torchao's GPU kernels take BF16 activations
            precision = "bf16"
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        on_gpu = {"attn_implementation": "sdpa"} if device != "cpu" else {}
        self.model = AutoModelForCausalLM.from_pretrained(str(artifact.path), dtype=dtype, use_safetensors=True,
                                                          trust_remote_code=False, **on_gpu).eval()
        self.pad = artifact.meta.get("eos_token_id") or 0
        self.info = {"dtype": str(dtype), "threads": knobs.threads, "torch": torch.__version__}
        self.generate_options: dict | None = None  # cuda: requests go through model.generate with these
        if device != "cpu":
            self._to_gpu(knobs)
        if recipe:  # written by the torchao_quantize pass: quantize on load
            apply_recipe(self.model, recipe)
            self.info["torchao"] = recipe["scheme"]
            self.weight_bytes = weight_bytes(self.model)
        else:
            self.weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.kv_bytes_per_value = 4 if precision == "fp32" else 2

    def _to_gpu(self, knobs) -> None:
        torch = self.torch
        if not torch.cuda.is_available():
            raise ConfigError(f"torch {torch.__version__} sees no CUDA GPU", "install a CUDA build of torch, or use "
                              "--device cpu")
        self.model.to(self.device)
        static = knobs.cache == "static" or knobs.compile != "none"
        options: dict = {"disable_compile": knobs.compile == "none"}
        if static:
            options["cache_implementation"] = "static"
        if knobs.compile != "none":
            from transformers import CompileConfig

            options["compile_config"] = CompileConfig(mode=None if knobs.compile == "default" else knobs.compile)
        self.generate_options = options
        self.info.update(device=self.device, gpu=torch.cuda.get_device_name(), cache="static" if static else "dynamic",
                         compile=knobs.compile, attention="sdpa", cuda=torch.version.cuda)

    def _ids(self, rows: list[list[int]]):
        return self.torch.tensor(rows, device=self.device)

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        torch = self.torch
        if self.generate_options is not None:  # cuda: generate's own loop (static cache, compile), streamed
            with torch.inference_mode():
                out = self.model.generate(input_ids=self._ids([prompt]), attention_mask=torch.ones(
                    1, len(prompt), dtype=torch.long, device=self.device), max_new_tokens=max_new_tokens,
                    min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.pad,
                    streamer=_Streamer(on_token), **self.generate_options)
            return out[0, len(prompt):].tolist()
        out: list[int] = []
        with torch.inference_mode():
            result = self._prefill(self._ids([prompt]))
            while True:
                token = int(result.logits[0, -1].argmax())
                out.append(token)
                if on_token is not None:
                    on_token(token)
                if len(out) >= max_new_tokens:
                    return out
                result = self.model(input_ids=self._ids([[token]]), past_key_values=result.past_key_values,
                                    use_cache=True)

    def _prefill(self, ids):
        return self.model(input_ids=ids, use_cache=True)

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        torch = self.torch
        width = max(len(p) for p in prompts)
        ids = self._ids([[self.pad] * (width - len(p)) + p for p in prompts])
        mask = self._ids([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.pad,
                                      **(self.generate_options or {}))
        return [row[width:].tolist() for row in out]

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            logits = self.model(input_ids=self._ids([tokens])).logits[0, :-1].float().cpu()
            picked = torch.log_softmax(logits, dim=-1)[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])]
        return picked.double().numpy()


class _Streamer:
    """transformers' streamer protocol: `put` gets the prompt first, then each step's accepted tokens."""

    def __init__(self, on_token: TokenCallback | None):
        self.on_token, self.prompt_seen, self.steps = on_token, False, 0

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.steps += 1
        if self.on_token is not None:
            for token in value.reshape(-1).tolist():
                self.on_token(int(token))

    def end(self) -> None:
        pass


class PromptLookupSession(TransformersSession):
    """Greedy prompt-lookup decoding through `model.generate`; counts drafted and accepted tokens."""

    def __init__(self, artifact: Artifact, precision: str, knobs: Knobs, decoding: dict):
        super().__init__(artifact, precision, knobs)
        self.num_tokens, self.max_ngram = int(decoding.get("num_tokens", 10)), int(decoding.get("max_ngram", 2))
        # Greedy and end-of-sequence ignored, as the plain loop: the same tokens, drafted and verified.
        self.config = {"do_sample": False, "prompt_lookup_num_tokens": self.num_tokens,
                       "max_matching_ngram_size": self.max_ngram, "eos_token_id": None, "pad_token_id": self.pad}
        self.info.update(decoding={"method": "prompt_lookup", "num_tokens": self.num_tokens,
                                   "max_ngram": self.max_ngram})
        self._counts = {"drafted": 0, "accepted": 0, "steps": 0}
        original = self.model._get_candidate_generator
        counts = self._counts

        def counting(*args, **kwargs):  # wrap the generator transformers builds, to see drafts and matches
            generator = original(*args, **kwargs)
            get, update = generator.get_candidates, generator.update_candidate_strategy

            def get_candidates(input_ids, *a, **k):
                candidates, logits = get(input_ids, *a, **k)
                counts["drafted"] += candidates.shape[1] - input_ids.shape[1]
                counts["steps"] += 1
                return candidates, logits

            def update_candidate_strategy(input_ids, scores, num_matches):
                counts["accepted"] += int(num_matches)
                return update(input_ids, scores, num_matches)

            generator.get_candidates, generator.update_candidate_strategy = get_candidates, update_candidate_strategy
            return generator

        self.model._get_candidate_generator = counting

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        torch = self.torch
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                      dtype=torch.long), max_new_tokens=max_new_tokens, **self.config,
                                      streamer=_Streamer(on_token))
        return out[0, len(prompt):].tolist()

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        return [self.generate(p, max_new_tokens) for p in prompts]  # assisted generation takes one sequence

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        c = dict(self._counts)
        if reset:
            self._counts.update(drafted=0, accepted=0, steps=0)
        if not c["steps"]:
            return None
        return {"method": "prompt_lookup", "acceptance_rate": c["accepted"] / c["drafted"] if c["drafted"] else 0.0,
                "draft_tokens_per_step": c["drafted"] / c["steps"],
                "tokens_per_step": (c["accepted"] + c["steps"]) / c["steps"], "steps": c["steps"]}


class GriffinSession(TransformersSession):
    """FFNs sliced per request: by the prompt's own activations (griffin) or by a hypernetwork (hyper_griffin)."""

    def __init__(self, artifact: Artifact, precision: str, knobs: Knobs, decoding: dict):
        super().__init__(artifact, precision, knobs)
        from inferarena.adaptive import griffin

        self.method = decoding["method"]
        self.griffin = griffin.Griffin(self.model, float(decoding.get("keep", 0.5)))
        self.hyper = None
        if self.method == "hyper_griffin":
            cfg = self.model.config
            self.hyper = griffin.load_hyper(artifact.path, cfg.hidden_size, len(self.griffin.modules),
                                            self.griffin.width, int(decoding["hidden"])).to(self.model.dtype)
        self.info.update(decoding=dict(decoding))

    def _prefill(self, ids):
        return self.griffin.prefill(ids, self.hyper)

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        return [self.generate(p, max_new_tokens) for p in prompts]  # each prompt has its own neurons

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        return self.griffin.split_logprobs(tokens, self.hyper)

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        spent = list(self.griffin.controller_s)
        if reset:
            self.griffin.controller_s.clear()
        if not spent:
            return None
        return {"method": self.method, "active_params_ratio": self.griffin.active_params_ratio,
                "ffn_kept_ratio": self.griffin.k / self.griffin.width,
                "controller_ms": 1000.0 * float(np.mean(spent)), "inputs": len(spent)}
