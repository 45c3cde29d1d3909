"""ONNX Runtime GenAI: a folder made by its model builder (`ort_genai_build`), INT4/INT8/FP32 weights.

The folder's precision is whatever the builder wrote, so, like llama.cpp, this runtime measures the
model as built. Perplexity is scored one token at a time (the generator exposes only the last
position's logits), which costs a decode step per scored token.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.evaluators.generation import picked_logprobs
from inferarena.runtimes.base import GenerativeSession, Knobs, Runtime, TokenCallback


class OrtGenAI(Runtime):
    name = "ort_genai"
    kind = "generate"
    formats = ("ort_genai",)
    precisions = ("native",)
    modules = ("onnxruntime_genai",)
    distribution = "onnxruntime-genai"
    extra = "llm"

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]):
        return OrtGenAISession(artifact, knobs)


class OrtGenAISession(GenerativeSession):
    def __init__(self, artifact: Artifact, knobs: Knobs):
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(artifact.path))
        config.clear_providers()  # CPU
        # Threads are a session option of genai_config.json: overlaid here, the file stays as built.
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": knobs.threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        self.weight_bytes = read_per_token(artifact.path / "model.onnx")
        self.kv_bytes_per_value = 4  # the CPU builds keep FP32 inputs, outputs and KV cache
        self.info = {"weights": artifact.meta.get("precision"), "threads": knobs.threads,
                     "builder": artifact.meta.get("builder_options")}

    def _generator(self, length: int):
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=length, min_length=length, do_sample=False, batch_size=1)
        return self.og.Generator(self.model, params)

    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]:
        generator = self._generator(len(prompt) + max_new_tokens)
        generator.append_tokens(np.asarray(prompt, dtype=np.int32))
        out: list[int] = []
        while not generator.is_done() and len(out) < max_new_tokens:
            generator.generate_next_token()
            out.append(int(generator.get_next_tokens()[0]))
            if on_token is not None:
                on_token(out[-1])
        return out

    def token_logprobs(self, tokens: list[int]) -> np.ndarray:
        generator = self._generator(len(tokens) + 1)
        rows = []
        for token in tokens[:-1]:
            generator.append_tokens(np.asarray([token], dtype=np.int32))
            rows.append(np.asarray(generator.get_logits(), dtype=np.float64).reshape(-1))
        return picked_logprobs(np.stack(rows), tokens[1:])


def read_per_token(model: Path) -> int:
    """Bytes of initializers one decode step reads: all of them but embedding tables only looked up (a Gather
    reads one row of them). The builder keeps the FP32 embedding next to its quantized LM head copy."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    users: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.op_type)
    total = 0
    for tensor in graph.initializer:
        if users.get(tensor.name) in ({"Gather"}, {"GatherBlockQuantized"}):
            continue
        length = next((int(e.value) for e in tensor.external_data if e.key == "length"), None)
        total += length if length is not None else len(tensor.raw_data)
    return total
