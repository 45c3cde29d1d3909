"""A user's TensorFlow models: a SavedModel folder, a .keras file or a .tflite file.

Each is opened once here to read its inputs (name, dtype, shape), which the generic tensor workload
needs: random inputs drawn from that spec, or the user's own .npz (`--inputs`). Opening also checks
the file, so a corrupt model fails here with a clear message instead of in every variant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models.base import ModelSource


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# A .tflite is already converted; a SavedModel or .keras file gets the one TFLite recipe that needs no
# calibration data (a user's model is measured on random inputs unless --inputs is given).
DEFAULT_PIPELINES = {"tflite": {}, "tf_savedmodel": {"tflite-dynamic-int8": ["litert"]},
                     "keras": {"tflite-dynamic-int8": ["litert"]}}


def _artifact(path: Path, fmt: str, inputs: list[dict], **meta) -> Artifact:
    return Artifact(path=path, format=fmt, meta={"name": path.name, "input_kind": "tensor", "task": "tensor",
                                                 "inputs": inputs, "default_pipelines": DEFAULT_PIPELINES[fmt],
                                                 **meta})


def _spec(name: str, dtype, shape) -> dict:
    """Unknown dimensions (None, -1) become "?", as the tensor workload expects."""
    dims = [d if isinstance(d, int) and d > 0 else "?" for d in (int(x) if x is not None else None for x in shape)]
    return {"name": name, "dtype": np.dtype(dtype).name, "shape": dims}


class TFLiteFile(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".tflite")

    def load(self, spec: str) -> Artifact:
        path = Path(spec).resolve()
        if not path.is_file():
            raise ModelError(f"TFLite file {spec} does not exist", "check the path passed to --model")
        import importlib.util

        if importlib.util.find_spec("ai_edge_litert") is None:
            raise RuntimeUnavailable("reading .tflite files needs LiteRT", "pip install 'inferarena[litert]'")
        from inferarena.frameworks.litert import open_interpreter

        interpreter = open_interpreter(path, 1)
        inputs = [_spec(d["name"], d["dtype"], d.get("shape_signature", d["shape"]))
                  for d in interpreter.get_input_details()]
        # What the file holds, since its precision was fixed at conversion: tensor counts by dtype.
        dtypes: dict[str, int] = {}
        for detail in interpreter.get_tensor_details():
            name = np.dtype(detail["dtype"]).name
            dtypes[name] = dtypes.get(name, 0) + 1
        return _artifact(path, "tflite", inputs, tensor_dtypes=dtypes)


class SavedModelDir(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return (Path(spec) / "saved_model.pb").is_file()

    def load(self, spec: str) -> Artifact:
        from inferarena.frameworks.tensorflow import SIGNATURE, import_tensorflow

        tf = import_tensorflow()
        path = Path(spec).resolve()
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TF raises many kinds (OSError, DecodeError, InvalidArgumentError...)
            raise ModelError(f"{path.name} is not a loadable SavedModel ({_first_line(exc)})",
                             "re-save it with tf.saved_model.save or model.export()") from None
        if SIGNATURE not in loaded.signatures:
            raise ModelError(f"SavedModel {path.name} has no '{SIGNATURE}' signature "
                             f"(it has: {', '.join(loaded.signatures) or 'none'})",
                             "export it with a serving signature (Keras: model.export(path))")
        specs = loaded.signatures[SIGNATURE].structured_input_signature[1]
        inputs = [_spec(name, s.dtype.as_numpy_dtype, s.shape.as_list()) for name, s in specs.items()]
        return _artifact(path, "tf_savedmodel", inputs)


class KerasFile(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".keras")

    def load(self, spec: str) -> Artifact:
        from inferarena.frameworks.tensorflow import import_tensorflow

        import_tensorflow()
        import keras

        path = Path(spec).resolve()
        if not path.is_file():
            raise ModelError(f"Keras file {spec} does not exist", "check the path passed to --model")
        try:
            model = keras.models.load_model(path, safe_mode=True)
        except Exception as exc:  # zip errors, unknown layers, version mismatches
            raise ModelError(f"{path.name} is not a loadable Keras model ({_first_line(exc)})",
                             "save it with model.save('model.keras') on Keras 3") from None
        inputs = [_spec(t.name.split(":")[0], t.dtype, t.shape) for t in model.inputs]
        return _artifact(path, "keras", inputs)
