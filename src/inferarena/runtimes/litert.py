"""LiteRT (formerly TensorFlow Lite): the `ai-edge-litert` interpreter, XNNPACK on CPU.

A .tflite model's precision is fixed when it is converted (see `passes.tf_convert`), so this runtime
only loads it. XNNPACK is applied by default to float and INT8 models; the thread count is a knob.
The interpreter has one shape at a time: a batch of another size resizes the input and reallocates
(once per size, outside the timed path after warm-up).
"""

from __future__ import annotations

import os

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session
from inferarena.runtimes.tensorflow import match_inputs


class LiteRT(Runtime):
    name = "litert"
    formats = ("tflite",)
    precisions = ("fp32",)
    modules = ("ai_edge_litert",)
    distribution = "ai-edge-litert"
    extra = "litert"

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        interpreter = open_interpreter(artifact.path, knobs.threads)
        session = LiteRTSession(interpreter, knobs.threads, artifact.meta.get("tflite_mode"))
        if artifact.meta.get("tensor_dtypes"):  # a user's .tflite: its precision was set when it was converted
            session.info["tensor_dtypes"] = artifact.meta["tensor_dtypes"]
        return session


def open_interpreter(path, threads: int | None = None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads or -1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"{path.name} is not a model LiteRT can load ({first})",
                         "check the file, or re-convert it with tf.lite.TFLiteConverter") from None
    return interpreter


class LiteRTSession(Session):
    def __init__(self, interpreter, threads: int | None, mode: str | None):
        self.interpreter = interpreter
        self.inputs = interpreter.get_input_details()
        self.outputs = interpreter.get_output_details()
        self.input_names = [d["name"] for d in self.inputs]
        self.shapes = {d["index"]: tuple(d["shape"]) for d in self.inputs}
        self.info = {"threads": threads, "delegate": "XNNPACK (default)", "tflite_mode": mode,
                     "input_dtypes": [np.dtype(d["dtype"]).name for d in self.inputs]}

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        it = self.interpreter
        feeds = match_inputs(self.input_names, batch)
        resized = False
        for detail in self.inputs:
            value = feeds[detail["name"]]
            if tuple(value.shape) != self.shapes[detail["index"]]:
                it.resize_tensor_input(detail["index"], list(value.shape))
                self.shapes[detail["index"]] = tuple(value.shape)
                resized = True
        if resized:
            try:
                it.allocate_tensors()
            except RuntimeError as exc:
                raise ModelError(f"this .tflite model does not take inputs of shape {list(value.shape)} ({exc})",
                                 "convert it with a dynamic batch dimension, or use batch size 1") from None
        for detail in self.inputs:
            it.set_tensor(detail["index"], feeds[detail["name"]].astype(detail["dtype"], copy=False))
        it.invoke()
        return {d["name"]: it.get_tensor(d["index"]) for d in self.outputs}
