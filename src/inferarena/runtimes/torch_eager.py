"""PyTorch eager on CPU: FP32, and BF16 through autocast where the CPU has native BF16."""

from __future__ import annotations

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.models.adaptive_encoder import ControlledSession
from inferarena.models.hf_encoder import OUTPUT_NAME, input_names, load_embedding_module
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session, StreamKnobs, ThreadedSession


class TorchKnobs(StreamKnobs):
    """Streams run on Python threads; torch's ops release the GIL, and each stream's ops use
    cores/streams threads."""


class TorchEager(Runtime):
    name = "torch"
    formats = ("hf_encoder", "torch_module", "adaptive_encoder")
    precisions = ("fp32", "bf16")
    modules = ("torch", "transformers")
    distribution = "torch"
    extra = "torch"
    Knobs = TorchKnobs

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        import torch

        torch.set_num_threads(knobs.threads_per_stream())
        if artifact.format == "torch_module":
            from inferarena.models import torch_module

            module = torch_module.build(artifact)
            dtypes = {s["name"]: getattr(torch, s["dtype"]) for s in artifact.meta["inputs"]}
            session = TorchSession(torch, module, precision, list(dtypes), artifact.meta["output_name"], dtypes)
            session.start_streams(knobs.streams)
            return session
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        if artifact.format == "adaptive_encoder":
            from inferarena.models import adaptive_encoder

            controller = adaptive_encoder.load(artifact.path, uses_tt, bf16=precision == "bf16")
            session = AdaptiveSession(torch, controller, precision, input_names(uses_tt))
            session.start_streams(knobs.streams)
            session.info.update(streams=knobs.streams, adaptive=adaptive_encoder.policy_summary(controller.policy))
            return session
        module = load_embedding_module(artifact.path, uses_tt)
        session = TorchSession(torch, module, precision, input_names(uses_tt))
        from inferarena.frameworks.torchao import apply_recipe, read_recipe

        if recipe := read_recipe(artifact.path):  # written by the torchao_quantize pass: quantize on load
            apply_recipe(module, recipe)
            session.info["torchao"] = recipe["scheme"]
        session.start_streams(knobs.streams)
        session.info["streams"] = knobs.streams
        return session


class TorchSession(ThreadedSession):
    def __init__(self, torch, module, precision: str, names: list[str], output: str = OUTPUT_NAME,
                 dtypes: dict | None = None):
        self.torch = torch
        self.output = output
        self.dtypes = dtypes or {n: torch.int64 for n in names}  # token ids unless the model says otherwise
        self.module = module
        self.bf16 = precision == "bf16"
        self.input_names = names
        self.info = {"threads": torch.get_num_threads(), "autocast": "bf16" if self.bf16 else None}
        self._flops: dict[tuple, float] = {}

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        """Counted with FlopCounterMode on the math attention path, so attention matmuls count too."""
        key = tuple(sorted(shapes.items()))
        if key not in self._flops:
            torch = self.torch
            from torch.nn.attention import SDPBackend, sdpa_kernel
            from torch.utils.flop_counter import FlopCounterMode

            inputs = {n: torch.ones(shapes[n], dtype=self.dtypes[n]) for n in self.input_names}
            # torchao's INT8 GEMM, which the counter does not know: (m, k) @ (k, n) is 2mkn like any matmul.
            int_mm = {torch.ops.aten._int_mm: lambda a, b, *_, **__: 2 * a[0] * a[1] * b[1]}
            with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(
                    display=False, custom_mapping=int_mm) as counter:
                self.module(**inputs)
            self._flops[key] = float(counter.get_total_flops())
        return self._flops[key]

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        torch = self.torch
        inputs = {n: torch.from_numpy(batch[n]) for n in self.input_names}
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.module(**inputs)
        return {self.output: out.float().numpy()}


class AdaptiveSession(ControlledSession, TorchSession):
    """An adaptive encoder: the controller decides per input how much of the model runs."""

    def __init__(self, torch, controller, precision: str, names: list[str]):
        super().__init__(torch, None, precision, names)
        self.controller = controller
