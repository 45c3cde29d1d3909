"""NNCF on OpenVINO models: post-training INT8 quantization, and INT8/INT4 weight-only compression.

Both read an ONNX (or OpenVINO IR) model into OpenVINO and write OpenVINO IR. Transformers are
quantized with `ModelType.TRANSFORMER`, which keeps the accuracy-critical ops (softmax, layer norm
inputs) out of INT8. Calibration samples come from the workload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext


class NncfQuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["performance", "mixed"] = Field(
        "mixed", description="performance: symmetric activations; mixed: asymmetric activations. Search space: "
        "performance, mixed.", json_schema_extra={"space": ["performance", "mixed"]})
    calibration_samples: int = Field(64, ge=1, description="Workload samples used to calibrate activation ranges.")
    fast_bias_correction: bool = Field(True, description="Fast bias correction (False: the slower, exact one).")


class NncfCompressWeightsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["int8_asym", "int8_sym", "int4_sym", "int4_asym"] = Field(
        "int8_asym", description="Weight precision and symmetry. Search space: int8_asym, int8_sym, int4_sym, int4_asym.",
        json_schema_extra={"space": ["int8_asym", "int8_sym", "int4_sym", "int4_asym"]})
    group_size: int = Field(
        -1, description="INT4 only: weights share a scale per group of this many; -1 = per channel. "
        "Must divide the layer width (e.g. 32 or 64 for 384). Search space: -1, 32, 64, 128.",
        json_schema_extra={"space": [-1, 32, 64, 128]})
    ratio: float = Field(
        1.0, gt=0, le=1, description="INT4 only: share of layers in INT4, the rest INT8. Search space: 0.6 .. 1.0.",
        json_schema_extra={"space": [0.6, 0.8, 1.0]})


def _read(artifact: Artifact):
    import openvino as ov

    return ov.Core().read_model(str(artifact.path))


def _write(model, artifact: Artifact, out_dir: Path, report: dict, name: str) -> Artifact:
    import openvino as ov

    out = out_dir / "model.xml"
    ov.save_model(model, str(out), compress_to_fp16=False)
    return Artifact(out, "openvino", {**artifact.meta, "pass_report": {**artifact.meta.get("pass_report", {}),
                                                                        name: report}})


class NncfQuantize(Pass):
    name = "nncf_quantize"
    accepts = ("onnx", "openvino")
    produces = ("openvino",)
    Config = NncfQuantizeConfig
    uses_data = True

    @classmethod
    def precision(cls, config: BaseModel) -> str:
        return "int8"

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import nncf

        if context is None:
            raise ConfigError("nncf_quantize needs calibration data", "run it inside `inferarena run`")
        model = _read(artifact)
        batches = context.calibration_batches(config.calibration_samples)
        names = {p.get_any_name() for p in model.inputs}
        dataset = nncf.Dataset([{k: v for k, v in b.items() if k in names} for b in batches])
        model_type = nncf.ModelType.TRANSFORMER if artifact.meta.get("model_type") else None
        preset = nncf.QuantizationPreset.MIXED if config.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
        quantized = nncf.quantize(model, dataset, preset=preset, model_type=model_type,
                                  subset_size=len(batches), fast_bias_correction=config.fast_bias_correction)
        report = {"preset": config.preset, "model_type": "transformer" if model_type else "default",
                  "calibration_samples": len(batches)}
        return _write(quantized, artifact, out_dir, report, self.name)


class NncfCompressWeights(Pass):
    name = "nncf_compress_weights"
    accepts = ("onnx", "openvino")
    produces = ("openvino",)
    Config = NncfCompressWeightsConfig

    @classmethod
    def precision(cls, config: BaseModel) -> str:
        return "int4" if config.mode.startswith("int4") else "int8"

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import nncf

        model = _read(artifact)
        mode = getattr(nncf.CompressWeightsMode, config.mode.upper())
        kwargs = {"group_size": config.group_size, "ratio": config.ratio} if config.mode.startswith("int4") else {}
        try:
            compressed = nncf.compress_weights(model, mode=mode, **kwargs)
        except Exception as exc:  # nncf rejects e.g. a group size that does not divide a layer
            raise ConfigError(f"nncf_compress_weights {config.mode}: {str(exc).splitlines()[0][:200]}",
                              "pick another group_size (one that divides every layer's width)") from None
        report = {"mode": config.mode, **kwargs, "weights": "compressed; activations stay floating point"}
        return _write(compressed, artifact, out_dir, report, self.name)
