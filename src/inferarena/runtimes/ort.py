"""ONNX Runtime, CPU execution provider; the graph optimization level is a knob."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session
from inferarena.trackers.flops import OnnxFlopCounter

LEVELS = ("disable_all", "basic", "extended", "all")


class OrtKnobs(Knobs):
    graph_optimization_level: Literal["disable_all", "basic", "extended", "all"] = Field(
        "all", description="ONNX Runtime graph optimization level applied when the session loads. Search space: "
        "basic, all.", json_schema_extra={"space": ["basic", "all"]}
    )


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    formats = ("onnx",)
    precisions = ("fp32",)
    modules = ("onnxruntime",)
    distribution = "onnxruntime"
    extra = "onnxruntime"
    Knobs = OrtKnobs

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[knobs.graph_optimization_level]
        if knobs.threads:
            options.intra_op_num_threads = knobs.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(artifact.path), options, providers=["CPUExecutionProvider"])
        batched = {i.name for i in session.get_inputs() if i.shape and not isinstance(i.shape[0], int)}
        return OrtSession(session, knobs, OnnxFlopCounter(Path(artifact.meta.get("flops_source", artifact.path)), batched))


class OrtSession(Session):
    def __init__(self, session, knobs: OrtKnobs, flops: OnnxFlopCounter):
        self.session = session
        self.counter = flops
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.info = {"providers": session.get_providers(), "graph_optimization_level": knobs.graph_optimization_level}

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        return self.counter(shapes)

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {n: batch[n] for n in self.input_names})
        return dict(zip(self.output_names, outputs))
