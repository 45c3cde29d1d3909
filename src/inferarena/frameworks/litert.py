"""LiteRT (TensorFlow Lite), as the .tflite model source and the LiteRT runtime both open it: one
interpreter, allocated, or a clear error for a file it cannot load."""

from __future__ import annotations

import os

from inferarena.errors import ModelError


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
