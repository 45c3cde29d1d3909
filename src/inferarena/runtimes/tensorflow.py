"""TensorFlow: a SavedModel through its serving signature, or a .keras model, in graph mode on CPU."""

from __future__ import annotations

import importlib.metadata

import numpy as np
from pydantic import Field

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError
from inferarena.frameworks.tensorflow import SIGNATURE, import_tensorflow
from inferarena.runtimes.base import Batch, Knobs, Runtime, Session


class TFKnobs(Knobs):
    inter_op_threads: int = Field(1, ge=1, description="Threads running independent ops side by side.")


class TensorFlow(Runtime):
    name = "tensorflow"
    formats = ("tf_savedmodel", "keras")
    precisions = ("fp32",)
    modules = ("tensorflow",)
    distribution = "tensorflow-cpu"
    extra = "tensorflow"
    Knobs = TFKnobs

    @classmethod
    def version(cls) -> str | None:
        for dist in ("tensorflow-cpu", "tensorflow"):  # either wheel provides the module
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        tf = import_tensorflow()
        if knobs.threads:  # must happen before TF runs anything; each variant has its own process
            tf.config.threading.set_intra_op_parallelism_threads(knobs.threads)
        tf.config.threading.set_inter_op_parallelism_threads(knobs.inter_op_threads)
        if artifact.format == "keras":
            import keras

            model = keras.models.load_model(artifact.path, safe_mode=True)
            names = [t.name.split(":")[0] for t in model.inputs]
            call = tf.function(lambda **kw: {"output_0": model([kw[n] for n in names] if len(names) > 1
                                                                else kw[names[0]], training=False)})
        else:
            loaded = tf.saved_model.load(str(artifact.path))
            if SIGNATURE not in loaded.signatures:
                raise ModelError(f"{artifact.path.name} has no '{SIGNATURE}' signature "
                                 f"(it has: {', '.join(loaded.signatures) or 'none'})",
                                 "save the model with a serving signature")
            signature = loaded.signatures[SIGNATURE]
            names = list(signature.structured_input_signature[1])
            call, model = signature, loaded  # keep `loaded` alive: the signature does not own its variables
        return TFSession(tf, call, model, names)


class TFSession(Session):
    def __init__(self, tf, call, owner, names: list[str]):
        self.tf, self.call, self.owner = tf, call, owner
        self.input_names = names
        self.info = {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                     "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        feeds = match_inputs(self.input_names, batch)
        out = self.call(**{n: self.tf.constant(v) for n, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}


def match_inputs(names: list[str], batch: Batch) -> dict[str, np.ndarray]:
    """The batch keyed by the model's own input names: exact names first, then names that contain the
    workload's (`serving_default_images:0` for `images`), then by position for a single input."""
    if set(names) == set(batch):
        return {n: batch[n] for n in names}
    out = {}
    for name in names:
        found = [k for k in batch if k == name or k in name]
        if len(found) == 1:
            out[name] = batch[found[0]]
    if len(out) == len(names):
        return out
    if len(names) == len(batch) == 1:
        return {names[0]: next(iter(batch.values()))}
    raise ModelError(f"the model's inputs ({', '.join(names)}) do not match the workload's ({', '.join(batch)})",
                     "name the arrays in --inputs after the model's inputs")
