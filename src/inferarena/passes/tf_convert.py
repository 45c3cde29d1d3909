"""TensorFlow and LiteRT conversions: a model's Keras form to a SavedModel, and a SavedModel or .keras
file to a .tflite flatbuffer with `tf.lite.TFLiteConverter`.

There is no general PyTorch -> TensorFlow converter that lives with the rest of this stack
(onnx2tf downgrades numpy, protobuf, onnx and onnxruntime; litert-torch pins an old
typing-extensions that breaks pydantic). So `export_tf` needs a model that also defines itself in
Keras (`meta["keras_builder"]`, as the bundled EfficientNet-Lite0 does, with the PyTorch weights
copied in); other `torch_module` models get a clear error. A user's own SavedModel or .keras file
goes straight to `tflite_convert`.

The .tflite keeps float32 inputs and outputs in every mode, so every runtime is fed the same batch;
full INT8 adds a quantize op at the input and a dequantize at the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.frameworks.tensorflow import import_tensorflow
from inferarena.passes.base import Pass, PassContext


class ExportTFConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportTF(Pass):
    """A `torch_module` model with a Keras definition -> SavedModel (serving signature `serving_default`)."""

    name = "export_tf"
    accepts = ("torch_module",)
    produces = ("tf_savedmodel",)
    converts = True
    Config = ExportTFConfig

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context=None) -> Artifact:
        if not artifact.meta.get("keras_builder"):
            raise ConfigError(
                f"{artifact.meta.get('name', artifact.path.name)} has no Keras definition, and inferarena converts "
                "PyTorch to TensorFlow only through one",
                "export it to a SavedModel, .keras or .tflite yourself and pass that as --model",
            )
        import_tensorflow()
        from inferarena.models import torch_module

        model = torch_module.build(artifact, key="keras_builder")
        out = out_dir / "saved_model"
        model.export(str(out), format="tf_saved_model", verbose=False)
        return Artifact(out, "tf_savedmodel", dict(artifact.meta))


class TFLiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["float32", "float16", "dynamic_int8", "int8"] = Field(
        "float32",
        description="float32: as is; float16: FP16 weights (dequantized at load on CPU); dynamic_int8: INT8 "
        "weights, activations quantized on the fly; int8: full integer with ranges calibrated on the workload.",
        json_schema_extra={"space": ["float32", "float16", "dynamic_int8", "int8"]},
    )
    calibration_samples: int = Field(64, ge=1, description="Workload samples for int8's representative dataset.")


class TFLiteConvert(Pass):
    name = "tflite_convert"
    accepts = ("tf_savedmodel", "keras")
    produces = ("tflite",)
    converts = True
    uses_data = True  # only `int8` reads the context
    Config = TFLiteConfig

    @classmethod
    def precision(cls, config: BaseModel) -> str | None:
        return {"float16": "fp16", "dynamic_int8": "int8", "int8": "int8"}.get(config.mode)

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        tf = import_tensorflow()
        if artifact.format == "keras":
            import keras

            converter = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(artifact.path, safe_mode=True))
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(artifact.path))
        if config.mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if config.mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif config.mode == "int8":
            if context is None:
                raise ConfigError("tflite_convert mode int8 needs calibration data", "run it inside a sweep")
            batches = context.calibration_batches(config.calibration_samples)

            def representative() -> Iterator[list]:
                for batch in batches:
                    yield list(batch.values())

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        out = out_dir / f"model-{config.mode}.tflite"
        out.write_bytes(converter.convert())
        return Artifact(out, "tflite", {**artifact.meta, "tflite_mode": config.mode})
