"""OpenVINO on CPU, with INFERENCE_PRECISION_HINT (f32/bf16) and PERFORMANCE_HINT set explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.runtimes.base import Batch, Done, Knobs, Runtime, Session
from inferarena.trackers.flops import OnnxFlopCounter

OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class OvKnobs(Knobs):
    performance_hint: Literal["LATENCY", "THROUGHPUT"] = Field(
        "LATENCY", description="OpenVINO PERFORMANCE_HINT: LATENCY (one stream) or THROUGHPUT (as many streams "
        "as the plugin finds best for this CPU, each fed by its own infer request through AsyncInferQueue). "
        "Search space: LATENCY, THROUGHPUT (tried first where throughput is searched).",
        json_schema_extra={"space": ["LATENCY", "THROUGHPUT"], "throughput": "THROUGHPUT"}
    )
    streams: int | None = Field(
        None, ge=1, le=64, description="NUM_STREAMS, overriding the hint's choice; that many requests are kept "
        "in flight.")
    pinning: bool | None = Field(
        None, description="ENABLE_CPU_PINNING: bind each stream's threads to cores. Default: the plugin's choice. "
        "Search space: the plugin's choice (tried first), true, false.", json_schema_extra={"space": [None, True, False]})
    static_shapes: bool = Field(
        True, description="Reshape the model to the workload's fixed dimensions before compiling. Where every "
        "dimension but the batch is fixed, a second copy is compiled for batch 1 and answers single samples "
        "(SingleStream), as a hand-written latency loop would compile it."
    )
    fp_precision: Literal["auto", "f32", "bf16"] = Field(
        "auto", description="A quantized (INT8) model only: the precision of the ops it keeps in floating point "
        "(layer norms, softmax, GELU), as INFERENCE_PRECISION_HINT. auto: OpenVINO's own choice for this CPU "
        "(bf16 where the CPU has it natively, else f32), what a plain compile_model gets. Floating-point "
        "variants ignore it: their precision sets the hint.")


class OpenVINO(Runtime):
    name = "openvino"
    formats = ("openvino", "onnx")
    precisions = ("fp32", "bf16", "fp16")  # fp16 only where the CPU has it natively (AVX512-FP16/AMX-FP16)
    modules = ("openvino",)
    distribution = "openvino"
    extra = "openvino"
    Knobs = OvKnobs

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        names = {p.get_any_name() for p in model.inputs}
        shapes = {n: s for n, s in input_shapes.items() if n in names}
        static = knobs.static_shapes and any(d != -1 for shape in shapes.values() for d in shape)
        if static:
            model.reshape({n: ov.PartialShape(s) for n, s in shapes.items()})
        config = {"PERFORMANCE_HINT": knobs.performance_hint}
        if not _quantized(model):
            config["INFERENCE_PRECISION_HINT"] = OV_PRECISION[precision]
        elif knobs.fp_precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = knobs.fp_precision
        if knobs.threads:
            config["INFERENCE_NUM_THREADS"] = knobs.threads
        if knobs.streams:
            config["NUM_STREAMS"] = knobs.streams
        if knobs.pinning is not None:
            config["ENABLE_CPU_PINNING"] = knobs.pinning
        compiled = core.compile_model(model, "CPU", config)
        single = None
        # Fixed but for the batch: batch 1 fully static runs a single sample faster (MiniLM INT8 at 128 tokens,
        # 6 interleaved 2-s rounds: 6.6 against 7.6 ms median), so single samples get their own copy.
        if static and all(d != -1 for s in shapes.values() for d in s[1:]) and any(s[0] == -1 for s in shapes.values()):
            model.reshape({n: ov.PartialShape([1, *s[1:]]) for n, s in shapes.items()})
            single = core.compile_model(model, "CPU", config)
        counter = None
        if artifact.format == "onnx" or "flops_source" in artifact.meta:
            batched = {p.get_any_name() for p in model.inputs if p.get_partial_shape()[0].is_dynamic}
            counter = OnnxFlopCounter(Path(artifact.meta.get("flops_source", artifact.path)), batched)
        return OvSession(compiled, counter, single)

    @staticmethod
    def from_compiled(compiled) -> Session:
        """A Session on a model compiled elsewhere, without a FLOP counter: NNCF's accuracy control hands
        over each candidate it validates compiled."""
        return OvSession(compiled, None)


class OvSession(Session):
    """`predict` uses one infer request; `submit` feeds OPTIMAL_NUMBER_OF_INFER_REQUESTS of them through an
    AsyncInferQueue, so every stream the performance hint (or NUM_STREAMS) made has work."""

    def __init__(self, compiled, flops: OnnxFlopCounter | None, single=None):
        self.compiled = compiled
        self.counter = flops
        self.request = compiled.create_infer_request()
        # A copy compiled for batch 1 (see OvKnobs.static_shapes); its outputs are the same ports by name.
        self.single = single.create_infer_request() if single is not None else None
        self.input_names = [p.get_any_name() for p in compiled.inputs]
        self.outputs = [(o, o.get_any_name()) for o in compiled.outputs]
        self.info = {
            key.lower(): _text(compiled.get_property(key))
            for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS",
                        "ENABLE_CPU_PINNING", "OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        }
        self.info["batch1_copy"] = single is not None
        self.requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = None

    def submit(self, batch: Batch, done: Done) -> None:
        if self.requests == 1:
            super().submit(batch, done)
            return
        if self.queue is None:
            import openvino as ov

            self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
            self.queue.set_callback(lambda request, callback: callback(None))
        # start_async blocks while every request is busy; a failed inference raises from here or from drain.
        self.queue.start_async({n: batch[n] for n in self.input_names}, done)

    def drain(self) -> None:
        if self.queue is not None:
            self.queue.wait_all()

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        return self.counter(shapes) if self.counter else None

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        inputs = {n: batch[n] for n in self.input_names}
        if self.single is not None and len(inputs[self.input_names[0]]) == 1:
            results = self.single.infer(inputs)
            return {name: np.asarray(results[name]) for _, name in self.outputs}
        results = self.request.infer(inputs)
        return {name: np.asarray(results[port]) for port, name in self.outputs}


def _quantized(model) -> bool:
    """Whether the model computes in INT8 (NNCF's FakeQuantize ops): its float precision is then the plugin's."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def _text(value) -> str:
    """OpenVINO property values as plain text (element types print as "<Type: 'bfloat16'>" otherwise)."""
    return value.to_string() if hasattr(value, "to_string") else str(value)
