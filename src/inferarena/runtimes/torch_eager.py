"""PyTorch, on the CPU or an NVIDIA GPU.

CPU: eager FP32, and BF16 through autocast where the CPU has native BF16.

CUDA (`--device cuda`): FP32 (TF32 only with the `tf32` knob), BF16 and FP16 (the weights cast), SDPA
attention, and `torch.compile` as a knob (`default`, `max-autotune`, `reduce-overhead` = CUDA graphs).
Timing is what a caller pays: `predict` copies the batch through pinned host memory to the GPU, runs
it, and copies the output back (`.cpu()` waits for the GPU), so the host<->device copies are inside
every measured latency. A torchao recipe runs on a BF16 copy of the weights there, since its INT8 and
FP8 kernels take BF16 activations. The CUDA path has not been run on a GPU yet (docs/guide.md, "GPUs").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.adaptive.encoder import ControlledSession
from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, RuntimeUnavailable
from inferarena.models.hf_encoder import OUTPUT_NAME, input_names, load_embedding_module
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session, StreamKnobs, ThreadedSession


class TorchKnobs(StreamKnobs):
    """Streams run on Python threads; torch's ops release the GIL, and each stream's ops use
    cores/streams threads."""

    compile: Literal["none", "default", "reduce-overhead", "max-autotune", "tensorrt"] = Field(
        "none", description="torch.compile the model before timing it: none (eager), default (Inductor), "
        "reduce-overhead (Inductor and CUDA graphs: the least launch overhead at small batches), max-autotune "
        "(Inductor tries GEMM configurations: minutes of compiling), tensorrt (torch-tensorrt's backend, where "
        "it is installed; unverified). Each measurement round is a fresh process, so it compiles again (Inductor's "
        "cache on disk shortens that). Search space on cuda: none, default, reduce-overhead, max-autotune.",
        json_schema_extra={"space": ["none", "default", "reduce-overhead", "max-autotune"], "devices": ["cuda"]})
    tf32: bool = Field(False, description="cuda FP32 only: let matmuls and convolutions use TF32 tensor cores "
                       "(10-bit mantissa inputs, FP32 accumulation). Off: FP32 is FP32.")


class TorchEager(Runtime):
    name = "torch"
    formats = ("hf_encoder", "torch_module", "adaptive_encoder")
    precisions = ("fp32", "bf16")
    devices = ("cpu", "cuda")
    device_precisions = {"cuda": ("fp32", "bf16", "fp16")}
    modules = ("torch", "transformers")
    distribution = "torch"
    extra = "torch"
    Knobs = TorchKnobs

    @classmethod
    def unavailable_on(cls, device: str) -> str | None:
        version = cls.version() or ""
        if device == "cuda" and version.endswith("+cpu"):
            return f"torch {version} is a CPU-only build (install a CUDA build of torch)"
        return None

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]],
             device: str = "cpu") -> Session:
        import torch

        torch.set_num_threads(knobs.threads_per_stream())
        if device != "cpu":
            _check_cuda(torch, knobs)
        if artifact.format == "torch_module":
            from inferarena.models import torch_module

            module = torch_module.build(artifact)
            if device != "cpu":
                module = module.to(device=device, dtype=_dtype(torch, precision)).eval()
            dtypes = {s["name"]: getattr(torch, s["dtype"]) for s in artifact.meta["inputs"]}
            session = TorchSession(torch, module, precision, list(dtypes), artifact.meta["output_name"], dtypes,
                                   device=device, compile_mode=knobs.compile)
            session.start_streams(knobs.streams)
            return session
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        if artifact.format == "adaptive_encoder":
            if device != "cpu":
                raise ConfigError("adaptive encoders (early exit, token pruning) run on the CPU only",
                                  "measure those pipelines with --device cpu")
            from inferarena.adaptive import encoder as adaptive_encoder

            controller = adaptive_encoder.load(artifact.path, uses_tt, bf16=precision == "bf16")
            session = AdaptiveSession(torch, controller, precision, input_names(uses_tt))
            session.start_streams(knobs.streams)
            session.info.update(streams=knobs.streams, adaptive=adaptive_encoder.policy_summary(controller.policy))
            return session
        from inferarena.frameworks.torchao import apply_recipe, read_recipe

        recipe = read_recipe(artifact.path)  # written by the torchao_quantize pass: quantize on load
        if device == "cpu":
            module = load_embedding_module(artifact.path, uses_tt)
            session = TorchSession(torch, module, precision, input_names(uses_tt), compile_mode=knobs.compile)
            if recipe:
                apply_recipe(module, recipe)
                session.info["torchao"] = recipe["scheme"]
        else:
            # torchao's GPU kernels take BF16 activations: a recipe quantizes a BF16 copy, on the GPU.
            computes = "bf16" if recipe else precision
            module = load_embedding_module(artifact.path, uses_tt, attn_implementation="sdpa")
            module = module.to(device=device, dtype=_dtype(torch, computes)).eval()
            if recipe:
                apply_recipe(module, recipe)
            session = TorchSession(torch, module, computes, input_names(uses_tt), device=device,
                                   compile_mode=knobs.compile)
            if recipe:
                session.info.update(torchao=recipe["scheme"], base_dtype="bf16")
        session.start_streams(knobs.streams)
        session.info["streams"] = knobs.streams
        return session


def _check_cuda(torch, knobs: TorchKnobs) -> None:
    """The worker's own look at the GPU: the orchestrator saw one through NVML, torch must see it too."""
    if not torch.cuda.is_available():
        raise ConfigError(f"torch {torch.__version__} sees no CUDA GPU", "install a CUDA build of torch, or use "
                          "--device cpu")
    if knobs.compile == "reduce-overhead" and knobs.streams > 1:
        raise ConfigError("compile=reduce-overhead replays CUDA graphs from one thread, and streams > 1 calls "
                          "the model from several", "use streams=1 with reduce-overhead")
    torch.set_float32_matmul_precision("high" if knobs.tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = knobs.tf32


def _dtype(torch, precision: str):
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _compiled(torch, module, mode: str):
    if mode == "none":
        return module
    if mode == "tensorrt":
        try:
            import torch_tensorrt  # noqa: F401 - registers the torch_tensorrt backend
        except ImportError:
            raise RuntimeUnavailable("compile=tensorrt needs torch-tensorrt", "pip install torch-tensorrt "
                                     "(matching your torch), or pick another compile mode") from None
        return torch.compile(module, backend="torch_tensorrt")
    return torch.compile(module, mode=None if mode == "default" else mode)


class TorchSession(ThreadedSession):
    def __init__(self, torch, module, precision: str, names: list[str], output: str = OUTPUT_NAME,
                 dtypes: dict | None = None, device: str = "cpu", compile_mode: str = "none"):
        self.torch = torch
        self.output = output
        self.dtypes = dtypes or dict.fromkeys(names, torch.int64)  # token ids unless the model says otherwise
        self.device = device
        self.module = module
        self.input_names = names
        self._flops: dict[tuple, float] = {}
        if device == "cpu":
            self.bf16 = precision == "bf16"
            self.info = {"threads": torch.get_num_threads(), "autocast": "bf16" if self.bf16 else None}
            if compile_mode != "none":
                self.info["compile"] = compile_mode
            self.run = _compiled(torch, module, compile_mode)
            return
        self.bf16 = False  # on a GPU the weights themselves are cast (by the runtime's load), no autocast
        self.dtype = _dtype(torch, precision)
        self.run = _compiled(torch, module, compile_mode)
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        self.info = {"device": device, "gpu": props.name, "dtype": precision, "compile": compile_mode,
                     "attention": "sdpa", "pinned_inputs": True, "tf32": torch.get_float32_matmul_precision() != "highest",
                     "cuda": torch.version.cuda, "torch": torch.__version__}

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        """Counted with FlopCounterMode on the math attention path of the eager module, so attention
        matmuls count too (a compiled module would hide its ops from the counter)."""
        key = tuple(sorted(shapes.items()))
        if key not in self._flops:
            torch = self.torch
            from torch.nn.attention import SDPBackend, sdpa_kernel
            from torch.utils.flop_counter import FlopCounterMode

            inputs = {n: self._input(torch.ones(shapes[n], dtype=self.dtypes[n])) for n in self.input_names}
            # torchao's INT8 GEMM, which the counter does not know: (m, k) @ (k, n) is 2mkn like any matmul.
            int_mm = {torch.ops.aten._int_mm: lambda a, b, *_, **__: 2 * a[0] * a[1] * b[1]}
            with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(
                    display=False, custom_mapping=int_mm) as counter:
                self.module(**inputs)
            self._flops[key] = float(counter.get_total_flops())
        return self._flops[key]

    def _input(self, tensor):
        """A host tensor on the session's device: through pinned memory (a DMA the host need not wait
        for), floating inputs in the module's dtype."""
        if self.device == "cpu":
            return tensor
        moved = tensor.pin_memory().to(self.device, non_blocking=True)
        return moved.to(self.dtype) if moved.is_floating_point() else moved

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        torch = self.torch
        if self.device == "cpu":
            inputs = {n: torch.from_numpy(batch[n]) for n in self.input_names}
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out = self.run(**inputs)
            return {self.output: out.float().numpy()}
        inputs = {n: self._input(torch.from_numpy(batch[n])) for n in self.input_names}
        with torch.inference_mode():
            out = self.run(**inputs)
        # .cpu() waits for the GPU: the clock the caller holds stops after the copy back, as a user's would.
        return {self.output: out.float().cpu().numpy()}


class AdaptiveSession(ControlledSession, TorchSession):
    """An adaptive encoder: the controller decides per input how much of the model runs."""

    def __init__(self, torch, controller, precision: str, names: list[str]):
        super().__init__(torch, None, precision, names)
        self.controller = controller
