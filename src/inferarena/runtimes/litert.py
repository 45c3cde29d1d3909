"""LiteRT (formerly TensorFlow Lite): the `ai-edge-litert` interpreter, XNNPACK on CPU.

A .tflite model's precision is fixed when it is converted (see `passes.tf_convert`), so this runtime
only loads it. XNNPACK is applied by default to float and INT8 models; the thread count is a knob.
The interpreter has one shape at a time: a batch of another size resizes the input and reallocates
(once per size, outside the timed path after warm-up).
"""

from __future__ import annotations

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.frameworks.litert import open_interpreter
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


class LiteRTSession(Session):
    """Feeds float batches to any .tflite: int8/uint8 inputs are quantized with the file's own scale and
    zero point, and such outputs dequantized. A model whose batch dimension is fixed at 1 runs a
    larger batch one sample at a time (`info["batching"]` says so); others are resized."""

    def __init__(self, interpreter, threads: int | None, mode: str | None):
        self.interpreter = interpreter
        self.inputs = interpreter.get_input_details()
        self.outputs = interpreter.get_output_details()
        self.input_names = [d["name"] for d in self.inputs]
        self.shapes = {d["index"]: tuple(d["shape"]) for d in self.inputs}
        signatures = [d.get("shape_signature", d["shape"]) for d in self.inputs]
        self.one_at_a_time = all(len(s) and s[0] == 1 for s in signatures)
        quantized = [d for d in self.inputs + self.outputs if _scale(d) is not None]
        self.info = {"threads": threads, "delegate": "XNNPACK (default)", "tflite_mode": mode,
                     "input_dtypes": [np.dtype(d["dtype"]).name for d in self.inputs],
                     "batching": "one sample at a time (batch fixed at 1 in the file)" if self.one_at_a_time
                     else "resized per batch size",
                     "io_quantized": bool(quantized)}

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        feeds = match_inputs(self.input_names, batch)
        size = len(next(iter(feeds.values())))
        if self.one_at_a_time and size > 1:
            parts = [self._invoke({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(size)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._invoke(feeds)

    def _invoke(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
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
            it.set_tensor(detail["index"], _quantize(feeds[detail["name"]], detail))
        it.invoke()
        return {d["name"]: _dequantize(it.get_tensor(d["index"]), d) for d in self.outputs}


def _scale(detail) -> tuple[float, int] | None:
    """(scale, zero point) of an integer tensor the file quantized, else None."""
    scale, zero = detail.get("quantization", (0.0, 0))
    return (scale, zero) if np.dtype(detail["dtype"]).kind in "iu" and scale > 0 else None


def _quantize(value: np.ndarray, detail) -> np.ndarray:
    params = _scale(detail)
    if params is None or np.dtype(value.dtype).kind in "iu":
        return value.astype(detail["dtype"], copy=False)
    info = np.iinfo(detail["dtype"])
    return np.clip(np.rint(value / params[0]) + params[1], info.min, info.max).astype(detail["dtype"])


def _dequantize(value: np.ndarray, detail) -> np.ndarray:
    params = _scale(detail)
    return value if params is None else (value.astype(np.float32) - params[1]) * np.float32(params[0])
