"""ONNX Runtime INT8 quantization, dynamic or static QDQ, optionally under an accuracy budget.

With `max_drop` set, this is accuracy-driven mixed precision: the MatMul/Gemm layers are ranked by
how much INT8 hurts them, then the most harmful are returned to FP32, fewest first (binary search
over the ranking, each step checked end to end on cos_min against the FP32 reference), until
cos_min >= 1 - max_drop. The layers kept in FP32 are reported.

Two rankings (`sensitivity`):
- local (default): one FP32 pass records every layer's inputs; each layer's INT8 error is then
  simulated in numpy (activations per-tensor uint8 as ORT quantizes them, weights int8 per tensor
  or per channel) as ||XW - X'W'|| / ||XW||. Seconds, and it finds the outlier-heavy layers that
  dominate the loss (on MiniLM: the FFN output projections).
- isolated: each layer quantized alone and the whole model checked; one session per layer, so
  about a minute on MiniLM, and exact about each layer's effect on the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext

QUANTIZABLE = ("MatMul", "Gemm")
SENSITIVITY_SAMPLES = 16  # evaluation samples used to rank layers; the final check uses all of them


class OrtQuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["dynamic", "static"] = Field(
        "dynamic", description="dynamic: weights INT8, activations quantized at run time. static: QDQ with "
        "activation ranges calibrated on the workload. Search space: dynamic, static.",
        json_schema_extra={"space": ["dynamic", "static"]})
    per_channel: bool = Field(False, description="Per-channel weight scales. Search space: true, false.",
                              json_schema_extra={"space": [False, True]})
    calibrate_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="Static only: how activation ranges are calibrated. Search space: minmax, entropy, "
        "percentile.", json_schema_extra={"space": ["minmax", "entropy", "percentile"]})
    calibration_samples: int = Field(64, ge=1, description="Static only: workload samples used for calibration.")
    max_drop: float | None = Field(
        None, gt=0, lt=1, description="Accuracy budget: keep cos_min >= 1 - max_drop against the FP32 reference by "
        "returning the most sensitive layers to FP32. None: quantize every layer.")
    sensitivity: Literal["auto", "local", "isolated"] = Field(
        "auto", description="How layers are ranked for the budget: local (each layer's simulated INT8 error on "
        "its recorded inputs; seconds), isolated (each layer quantized alone, whole model checked; minutes), "
        "auto (local for dynamic, isolated for static, where calibrated ranges make the local simulation poor).")


class OrtQuantize(Pass):
    name = "ort_quantize"
    accepts = ("onnx",)
    produces = ("onnx",)
    Config = OrtQuantizeConfig
    uses_data = True
    version = "2"  # the budget is checked on every shape strategy, at the measurement's batch size

    @classmethod
    def precision(cls, config: BaseModel) -> str:
        return "int8"

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import onnx

        if context is None or (config.max_drop is not None and context.reference_path is None):
            raise ConfigError("ort_quantize needs the workload and the FP32 reference", "run it inside `inferarena run`")
        source = _with_node_names(artifact.path, out_dir)
        graph = onnx.load(str(source), load_external_data=False).graph
        candidates = [node.name for node in graph.node if node.op_type in QUANTIZABLE]
        quantizer = _Quantizer(source, config, context, out_dir)
        out = out_dir / "model.onnx"
        kept: list[str] = []
        report: dict = {"mode": config.mode, "quantizable_layers": len(candidates)}
        if config.max_drop is None:
            quantizer.quantize(out, exclude=[])
        else:
            target = 1.0 - config.max_drop
            full = quantizer.fidelity(quantizer.quantize(out, exclude=[]))
            report["cos_min_all_int8"] = full.cos_min
            if full.cos_min < target:
                kept = quantizer.smallest_exclusion(candidates, target, out)
                top = sorted(quantizer.ranking.items(), key=lambda item: -item[1])[:5]
                report["sensitivity"] = ("local" if config.mode == "dynamic" else "isolated") \
                    if config.sensitivity == "auto" else config.sensitivity
                report["most_sensitive"] = {name: round(cost, 5) for name, cost in top}
            final = quantizer.fidelity(quantizer.quantize(out, exclude=kept))
            report.update(cos_min=final.cos_min, target_cos_min=target, budget_met=final.cos_min >= target)
            if final.cos_min < target:
                report["note"] = (f"budget max_drop={config.max_drop} cannot be met: the best reachable cos_min is "
                                  f"{final.cos_min:.5f}, with {len(kept)} of {len(candidates)} layers in FP32")
        report["kept_layers"] = kept
        if source != artifact.path:
            source.unlink()
        meta = {**artifact.meta, "kept_layers": kept,
                "pass_report": {**artifact.meta.get("pass_report", {}), self.name: report}}
        return Artifact(out, "onnx", meta)


def _with_node_names(path: Path, out_dir: Path) -> Path:
    """Layers are chosen by node name, so every node needs one; name the unnamed in a copy."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if all(node.name for node in model.graph.node):
        return path
    model = onnx.load(str(path))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    named = out_dir / "named.onnx"
    onnx.save(model, str(named))
    return named


class _Quantizer:
    def __init__(self, source: Path, config: OrtQuantizeConfig, context: PassContext, out_dir: Path):
        self.source, self.config, self.context, self.out_dir = source, config, context, out_dir
        self.cache_path = out_dir / "calibration.cache"

    def quantize(self, out: Path, exclude: list[str], only: list[str] | None = None) -> Path:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )

        common = {"per_channel": self.config.per_channel, "nodes_to_exclude": exclude or None,
                  "nodes_to_quantize": only, "op_types_to_quantize": list(QUANTIZABLE)}
        if self.config.mode == "dynamic":
            quantize_dynamic(str(self.source), str(out), weight_type=QuantType.QInt8, **common)
            return out

        batches = self.context.calibration_batches(self.config.calibration_samples)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter(batches)

            def get_next(self):
                return next(self.items, None)

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.config.calibrate_method]
        # Calibrate once; every later quantization (sensitivity, search) reuses the ranges.
        quantize_static(str(self.source), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                        calibration_cache_path=str(self.cache_path), **common)
        return out

    def fidelity(self, path: Path, samples: int | None = None, every_shape: bool = True):
        from inferarena import runtimes

        OnnxRuntime = runtimes.get("onnxruntime")  # through the registry: a pass imports no runtime plugin
        session = OnnxRuntime().load(Artifact(path, "onnx"), "fp32",
                                     OnnxRuntime.validate_knobs({"threads": self.context.threads}), {})
        return self.context.fidelity(session, samples, every_shape)

    def smallest_exclusion(self, candidates: list[str], target: float, out: Path) -> list[str]:
        """Rank layers by how much INT8 hurts them, then find the fewest to keep in FP32."""
        probe = self.out_dir / "probe.onnx"
        method = self.config.sensitivity
        if method == "local" or (method == "auto" and self.config.mode == "dynamic"):
            cost = self.local_errors(candidates)
        else:
            cost = {}
            for name in candidates:
                self.quantize(probe, exclude=[], only=[name])
                cost[name] = 1.0 - self.fidelity(probe, SENSITIVITY_SAMPLES, every_shape=False).cos_min
        self.ranking = cost
        ranked = sorted(candidates, key=lambda n: cost[n], reverse=True)
        low, high = 0, len(ranked)  # keeping all of them in FP32 meets any budget the reference meets
        while low < high:
            middle = (low + high) // 2
            if self.fidelity(self.quantize(probe, exclude=ranked[:middle])).cos_min >= target:
                high = middle
            else:
                low = middle + 1
        probe.unlink(missing_ok=True)
        return ranked[:low]

    def local_errors(self, candidates: list[str]) -> dict[str, float]:
        """Each layer's relative INT8 error on its own FP32 inputs, from one pass that records them."""
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        model = onnx.load(str(self.source))
        weights = {t.name: t for t in model.graph.initializer}
        nodes = {n.name: n for n in model.graph.node if n.name in set(candidates)}
        wanted = {t for n in nodes.values() for t in n.input[:2] if t not in weights}
        present = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in sorted(wanted - present))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        options.intra_op_num_threads = self.context.threads
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        feeds = {i.name for i in session.get_inputs()}
        recorded: dict[str, list] = {t: [] for t in wanted}
        for batch in self.context.calibration_batches(SENSITIVITY_SAMPLES):
            values = dict(zip(names, session.run(None, {k: v for k, v in batch.items() if k in feeds})))
            for t in wanted:
                recorded[t].append(values[t])
        errors = {}
        for name, node in nodes.items():
            a, b = node.input[0], node.input[1]
            if b in weights:
                w = numpy_helper.to_array(weights[b]).astype(np.float32)
                if node.op_type == "Gemm" and any(attr.name == "transB" and attr.i for attr in node.attribute):
                    w = w.T
                wq = _fake_int8(w, per_channel=self.config.per_channel)
                pairs = [(x, w, wq) for x in recorded.get(a, [])]
            elif self.config.mode == "dynamic":  # ORT's dynamic MatMul quantizes constant-B nodes only
                pairs = []
            else:  # activation x activation (attention scores): both sides per-tensor uint8
                pairs = [(x, y, _fake_uint8(y)) for x, y in zip(recorded.get(a, []), recorded.get(b, []))]
            num = den = 0.0
            for x, w, wq in pairs:
                exact = np.matmul(x, w)
                num += float(np.linalg.norm(exact - np.matmul(_fake_uint8(x), wq)) ** 2)
                den += float(np.linalg.norm(exact) ** 2)
            errors[name] = (num / den) ** 0.5 if den > 0 else 0.0
        return {n: errors.get(n, 0.0) for n in candidates}


def _fake_uint8(x):
    """Per-tensor asymmetric uint8, as ORT's DynamicQuantizeLinear does: quantize, then dequantize."""
    import numpy as np

    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero = np.round(-low / scale)
    return ((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)


def _fake_int8(w, per_channel: bool):
    """Symmetric int8 weights, per output channel (columns of a MatMul's B) or per tensor."""
    import numpy as np

    bound = np.abs(w).max(axis=0, keepdims=True) if per_channel else np.abs(w).max()
    scale = np.where(bound > 0, bound / 127.0, 1.0)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
