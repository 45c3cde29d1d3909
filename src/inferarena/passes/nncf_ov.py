"""NNCF on OpenVINO models: post-training INT8 quantization, and INT8/INT4 weight-only compression.

Both read an ONNX (or OpenVINO IR) model into OpenVINO and write OpenVINO IR. Transformers are
quantized with `ModelType.TRANSFORMER`, which keeps the accuracy-critical ops (softmax, layer norm
inputs) out of INT8. Calibration samples come from the workload.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext

CALIBRATION_DEFAULT = 300  # nncf.quantize's own default subset_size


class NncfQuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["performance", "mixed"] = Field(
        "mixed", description="performance: symmetric activations; mixed: asymmetric activations. Search space: "
        "performance, mixed.", json_schema_extra={"space": ["performance", "mixed"]})
    calibration_samples: int | None = Field(
        None, ge=1, description="Workload samples used to calibrate activation ranges. Default: NNCF's own subset "
        f"size, {CALIBRATION_DEFAULT}, or as many as the workload has beyond the evaluation set. (On MiniLM, 64 "
        "samples gave cos_min 0.990, 300 gave 0.995.)")
    fast_bias_correction: bool = Field(True, description="Fast bias correction (False: the slower, exact one).")
    max_drop: float | None = Field(
        None, gt=0, lt=1, description="Accuracy budget: NNCF's quantization with accuracy control keeps the ops "
        "that hurt most in floating point until cos_min against the FP32 reference (worst over the workload's "
        "shape strategies) drops by at most max_drop from the FP32 model's own (about 1). The report says whether "
        "cos_min >= 1 - max_drop was reached.")
    max_iterations: int = Field(30, ge=1, description="With max_drop: most ops NNCF may return to floating point.")


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
        count = config.calibration_samples or max(1, min(CALIBRATION_DEFAULT, context.calibration_available))
        batches = context.calibration_batches(count)
        names = {p.get_any_name() for p in model.inputs}
        dataset = nncf.Dataset([{k: v for k, v in b.items() if k in names} for b in batches])
        model_type = nncf.ModelType.TRANSFORMER if artifact.meta.get("model_type") else None
        preset = nncf.QuantizationPreset.MIXED if config.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
        common = {"preset": preset, "model_type": model_type, "subset_size": len(batches),
                  "fast_bias_correction": config.fast_bias_correction}
        report = {"preset": config.preset, "model_type": "transformer" if model_type else "default",
                  "calibration_samples": len(batches)}
        if config.max_drop is None:
            quantized = nncf.quantize(model, dataset, **common)
        else:
            quantized = _with_accuracy_control(model, dataset, config, context, names, common, report)
        return _write(quantized, artifact, out_dir, report, self.name)


def _with_accuracy_control(model, calibration, config: NncfQuantizeConfig, context: PassContext, names: set[str],
                           common: dict, report: dict):
    """nncf.quantize_with_accuracy_control, judged by our own fidelity: each validation item is one
    evaluation sample, its value the worst cosine to the FP32 reference over the shape strategies."""
    import nncf
    import numpy as np
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    from inferarena import runtimes
    from inferarena.evaluators.fidelity import cosines
    from inferarena.outputs import outputs

    workload, indices = context.workload, list(range(len(context.eval_indices)))
    reference = np.load(context.reference_path, allow_pickle=False)
    strategy = workload.strategies[-1]
    ov_runtime = runtimes.get("openvino")  # through the registry: a pass imports no runtime plugin

    def validate(compiled, items) -> tuple[float, list[float]]:
        rows = [int(i) for i in items]
        samples = [context.eval_indices[i] for i in rows]
        session = ov_runtime.from_compiled(compiled)
        worst = np.min([cosines(outputs(session, workload, samples, s, batch=context.batch_size), reference[rows])
                        for s in workload.strategies], axis=0)
        return float(worst.min()), [float(v) for v in worst]

    validation = nncf.Dataset(indices, lambda i: {k: v for k, v in workload.collate(
        [context.eval_indices[i]], strategy).items() if k in names})
    target = 1.0 - config.max_drop
    messages = _Messages()
    logging.getLogger("nncf").addHandler(messages)
    try:
        quantized = nncf.quantize_with_accuracy_control(
            model, calibration, validation, validate, max_drop=config.max_drop, drop_type=nncf.DropType.ABSOLUTE,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=config.max_iterations), **common)
    finally:
        logging.getLogger("nncf").removeHandler(messages)
    import openvino as ov

    reached, _ = validate(ov.Core().compile_model(quantized, "CPU"), indices)
    report.update(max_drop=config.max_drop, target_cos_min=target, cos_min=round(reached, 6),
                  budget_met=reached >= target)
    # NNCF says which ops it returned to floating point ("N out of M were reverted ...:" then one a line).
    reverted = next((m for m in messages.lines if "were reverted back" in m), None)
    if reverted:
        head, _, ops = reverted.partition("\n")
        report["kept_fp32"] = head.split(" were reverted")[0]
        report["kept_fp32_ops"] = [n.strip() for n in ops.splitlines() if n.strip()][:20]
    if reached < target:
        report["note"] = (f"budget max_drop={config.max_drop} not met within {config.max_iterations} iterations: "
                          f"cos_min {reached:.5f}")
    return quantized


class _Messages(logging.Handler):
    """Collects NNCF's log lines: its report of reverted ops exists only there."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


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
