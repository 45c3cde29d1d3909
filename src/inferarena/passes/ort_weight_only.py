"""ONNX Runtime weight-only quantization: MatMul with a constant weight becomes MatMulNBits (INT4 or INT8).

Only the weights are quantized, blockwise along K, so no calibration data is needed. What the
activations do is ORT's choice at run time, set by `accuracy_level`: on x86 CPUs an FP32 model
computes in FP32 (weights dequantized on the fly) unless the level is 4, which quantizes the
activations to INT8 per block and runs an INT8 GEMM. Hence the default of 4: without it the
quantized model was slower than FP32 on MiniLM. Embeddings (Gather) stay FP32.

Example pipeline: `{"name": "ort_weight_only", "config": {"bits": 4, "block_size": 32}}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext


class OrtWeightOnlyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bits: Literal[4, 8] = Field(4, description="Weight precision. Search space: 4, 8.",
                                json_schema_extra={"space": [4, 8]})
    block_size: Literal[16, 32, 64, 128, 256] = Field(
        32, description="Weights along K share one scale per block of this many (ORT needs a power of two >= 16). "
        "Search space: 32, 64, 128.", json_schema_extra={"space": [32, 64, 128]})
    symmetric: bool = Field(False, description="Symmetric blocks (no zero points); asymmetric ones kept MiniLM "
                            "closer to FP32 at 4 bits. Search space: false, true.",
                            json_schema_extra={"space": [False, True]})
    accuracy_level: Literal[1, 2, 3, 4] | None = Field(
        4, description="MatMulNBits compute type: 4 = INT8 activations, the fast path on CPU; None or 1 = FP32 "
        "activations (2 = FP16 and 3 = BF16 where a kernel has them; x86 computes them in FP32), slower than the "
        "FP32 model on x86, and 8-bit weights several times slower. Search space: 4, None.",
        json_schema_extra={"space": [4, None]})


class OrtWeightOnly(Pass):
    name = "ort_weight_only"
    accepts = ("onnx",)
    produces = ("onnx",)
    Config = OrtWeightOnlyConfig

    @classmethod
    def precision(cls, config: BaseModel) -> str:
        return f"int{config.bits}"

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import onnx

        DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer = _quantizer_api()
        model = onnx.load(str(artifact.path))
        matmuls = sum(node.op_type == "MatMul" for node in model.graph.node)
        algo = DefaultWeightOnlyQuantConfig(block_size=config.block_size, is_symmetric=config.symmetric,
                                            accuracy_level=config.accuracy_level, bits=config.bits)
        quantizer = MatMulNBitsQuantizer(model, algo_config=algo)
        quantizer.process()
        converted = sum(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node)
        if converted == 0:
            raise ConfigError(f"ort_weight_only found no MatMul with a constant 2-D weight among {matmuls} MatMuls",
                              "weight-only quantization needs MatMul weights stored as initializers")
        out = out_dir / "model.onnx"
        quantizer.model.save_model_to_file(str(out), use_external_data_format=_needs_external_data(artifact.path))
        report = {"bits": config.bits, "block_size": config.block_size, "symmetric": config.symmetric,
                  "accuracy_level": config.accuracy_level, "matmuls": matmuls, "matmul_nbits": converted,
                  "size_mb_before": round(_size_mb(artifact.path), 3), "size_mb_after": round(_size_mb(out), 3)}
        meta = {**artifact.meta, "pass_report": {**artifact.meta.get("pass_report", {}), self.name: report}}
        return Artifact(out, "onnx", meta)


def _quantizer_api():
    """Import ORT's quantizer without its side effect: at import it calls logging.basicConfig(level=INFO),
    which would make every logger in the worker print INFO lines. Restore the root logger afterwards."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    root.setLevel(level)
    root.handlers[:] = handlers
    return DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer


def _files(path: Path) -> list[Path]:
    """The model file plus the external-data files it names, which count towards its size."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    names = {entry.value for init in model.graph.initializer if init.data_location == onnx.TensorProto.EXTERNAL
             for entry in init.external_data if entry.key == "location"}
    return [path, *(path.parent / name for name in sorted(names))]


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in _files(path)) / 1e6


def _needs_external_data(path: Path) -> bool:
    """Keep weights beside the graph when the input did, or when one protobuf could not hold them."""
    return len(_files(path)) > 1 or _size_mb(path) > 1800
