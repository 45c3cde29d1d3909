"""ONNX Runtime: the CPU execution provider, or on `--device cuda` its CUDA or TensorRT execution provider
(the `gpu_provider` knob); the graph optimization level is a knob.

The GPU providers come with the onnxruntime-gpu build: the plan skips ONNX Runtime on cuda where that
build is not installed, and `load` checks `onnxruntime.get_available_providers()` and that the session
really runs on the provider asked for (ONNX Runtime falls back to the CPU without a word otherwise).
`session.run` takes and returns host arrays, so the copies to and from the GPU are in every latency.
The GPU providers are too large to carry to the lent GPU machine and have never been run (docs/guide.md,
"GPUs").

An `adaptive_onnx` folder (early exit, token pruning) runs as one graph per stage under the same
controller torch runs (adaptive/onnx_stages.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.adaptive.encoder import ControlledSession
from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, RuntimeUnavailable
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session, StreamKnobs, ThreadedSession
from inferarena.trackers.flops import OnnxFlopCounter

LEVELS = ("disable_all", "basic", "extended", "all")


class OrtKnobs(StreamKnobs):
    graph_optimization_level: Literal["disable_all", "basic", "extended", "all"] = Field(
        "all", description="ONNX Runtime graph optimization level applied when the session loads. Search space: "
        "basic, all.", json_schema_extra={"space": ["basic", "all"]}
    )
    allow_spinning: bool = Field(
        True, description="Intra-op threads spin-wait for work between ops (session.intra_op.allow_spinning): "
        "lower latency, but spinning threads take cores from other streams. Search space: true, false.",
        json_schema_extra={"space": [True, False]})
    execution_mode: Literal["sequential", "parallel"] = Field(
        "sequential", description="ORT_SEQUENTIAL runs one op at a time; ORT_PARALLEL runs independent branches "
        "on the inter-op pool.")
    inter_op_threads: int = Field(1, ge=1, description="Inter-op threads (used by execution_mode=parallel).")
    gpu_provider: Literal["cuda", "tensorrt"] = Field(
        "cuda", description="cuda only: the execution provider, CUDAExecutionProvider or TensorrtExecutionProvider "
        "(TensorRT engines built on first load, with CUDA then the CPU for what TensorRT does not take).",
        json_schema_extra={"devices": ["cuda"]})


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    formats = ("onnx", "adaptive_onnx")
    precisions = ("fp32",)
    devices = ("cpu", "cuda")
    device_precisions = {"cuda": ("fp32",)}
    modules = ("onnxruntime",)
    distribution = "onnxruntime"
    extra = "onnxruntime"
    Knobs = OrtKnobs

    @classmethod
    def unavailable_on(cls, device: str) -> str | None:
        """The CUDA and TensorRT providers ship in onnxruntime-gpu, not in the CPU build (read without importing)."""
        import importlib.metadata

        if device == "cuda" and not any((d.metadata["Name"] or "").lower().replace("_", "-").startswith(
                "onnxruntime-gpu") for d in importlib.metadata.distributions()):
            return "its CUDA execution provider comes with onnxruntime-gpu, which is not installed"
        return None

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]],
             device: str = "cpu") -> Session:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[knobs.graph_optimization_level]
        options.intra_op_num_threads = knobs.threads_per_stream()
        options.inter_op_num_threads = knobs.inter_op_threads
        options.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if knobs.execution_mode == "parallel"
                                  else ort.ExecutionMode.ORT_SEQUENTIAL)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if knobs.allow_spinning else "0")
        options.log_severity_level = 3
        if artifact.format == "adaptive_onnx":
            if device != "cpu":
                raise ConfigError("adaptive ONNX graphs (early exit, token pruning) run on the CPU only",
                                  "measure those pipelines with --device cpu")
            from inferarena.adaptive import encoder as adaptive_encoder
            from inferarena.adaptive import onnx_stages as adaptive_onnx

            # One session per stage, each with its own pool: a pool that spins after its call takes the cores
            # from the next stage's (MiniLM at full depth: 46 ms a query spinning, 8.3 ms not).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")

            controller = adaptive_onnx.load(artifact.path, options, bool(artifact.meta.get("uses_token_type_ids")))
            adaptive = AdaptiveOrtSession(controller, knobs)
            adaptive.info["adaptive"] = adaptive_encoder.policy_summary(controller.policy)
            return adaptive
        session = ort.InferenceSession(str(artifact.path), options, providers=_providers(ort, device, knobs))
        if device != "cpu" and session.get_providers()[0] == "CPUExecutionProvider":
            raise RuntimeUnavailable(f"onnxruntime fell back to the CPU: {_providers(ort, device, knobs)[0]} did not "
                                     "load (CUDA or cuDNN libraries missing?)", "install the CUDA and cuDNN versions "
                                     "that your onnxruntime-gpu names, or use --device cpu")
        batched = {i.name for i in session.get_inputs() if i.shape and not isinstance(i.shape[0], int)}
        return OrtSession(session, knobs, OnnxFlopCounter(Path(artifact.meta.get("flops_source", artifact.path)), batched))


def _providers(ort, device: str, knobs: OrtKnobs) -> list[str]:
    """The execution providers in order of preference: the CPU's alone, or the GPU's with the CPU behind."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = "TensorrtExecutionProvider" if knobs.gpu_provider == "tensorrt" else "CUDAExecutionProvider"
    available = ort.get_available_providers()
    if wanted not in available:
        raise RuntimeUnavailable(f"onnxruntime {ort.__version__} here has no {wanted} (it has {', '.join(available)})",
                                 "pip install onnxruntime-gpu in place of onnxruntime, or use --device cpu")
    return list(dict.fromkeys([wanted, "CUDAExecutionProvider", "CPUExecutionProvider"]))


class OrtSession(ThreadedSession):
    """One InferenceSession; with streams > 1, that many threads call `run` on it at once (ORT sessions
    are safe to run concurrently), each with cores/streams intra-op threads."""

    def __init__(self, session, knobs: OrtKnobs, flops: OnnxFlopCounter):
        self.session = session
        self.counter = flops
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.info = {"providers": session.get_providers(), "graph_optimization_level": knobs.graph_optimization_level,
                     "streams": knobs.streams, "intra_op_threads": knobs.threads_per_stream(),
                     "allow_spinning": knobs.allow_spinning, "execution_mode": knobs.execution_mode}
        self.start_streams(knobs.streams)

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        return self.counter(shapes)

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {n: batch[n] for n in self.input_names})
        return dict(zip(self.output_names, outputs))


class AdaptiveOrtSession(ControlledSession, ThreadedSession):
    """An adaptive encoder on ONNX Runtime: the controller decides per input which stage graphs run."""

    def __init__(self, controller, knobs: OrtKnobs):
        from inferarena.models.hf_encoder import OUTPUT_NAME, input_names

        self.controller, self.output = controller, OUTPUT_NAME
        self.input_names = input_names(controller.stages.uses_tt)
        self.info = {"providers": ["CPUExecutionProvider"], "graph_optimization_level": knobs.graph_optimization_level,
                     "streams": knobs.streams, "intra_op_threads": knobs.threads_per_stream(),
                     "allow_spinning": False, "graphs": "one per stage"}
        self.start_streams(knobs.streams)
