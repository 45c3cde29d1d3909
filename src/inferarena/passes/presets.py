"""Named pipelines for `--pipelines`: the common recipes, so nobody has to write YAML to try them."""

from __future__ import annotations

from inferarena.config import PipelineSpec
from inferarena.errors import ConfigError

PRESETS: dict[str, list[dict]] = {
    "ort-optimized": [{"name": "ort_optimize", "config": {"level": "extended", "transformer_fusion": True}}],
    "int8-dynamic": [{"name": "ort_quantize", "config": {"mode": "dynamic"}}],
    "int8-static": [{"name": "ort_quantize", "config": {"mode": "static"}}],
    # Accuracy-controlled: per-channel scales first (they alone lift MiniLM's cos_min from 0.94 to 0.99),
    # then the fewest layers back to FP32 that meet cos_min >= 0.99.
    "int8-dynamic-ac": [{"name": "ort_quantize", "config": {"mode": "dynamic", "per_channel": True, "max_drop": 0.01}}],
    "int8-static-ac": [{"name": "ort_quantize", "config": {"mode": "static", "per_channel": True, "max_drop": 0.01}}],
    "nncf-int8": [{"name": "nncf_quantize", "config": {}}],
    # NNCF's quantization with accuracy control: ops back to FP32 until cos_min >= 0.99.
    "nncf-int8-ac": [{"name": "nncf_quantize", "config": {"max_drop": 0.01}}],
    "nncf-int8-weights": [{"name": "nncf_compress_weights", "config": {"mode": "int8_asym"}}],
    "nncf-int4-weights": [{"name": "nncf_compress_weights", "config": {"mode": "int4_sym", "group_size": 64,
                                                                       "ratio": 1.0}}],
    # ORT MatMulNBits; accuracy_level 4 = INT8 activations, the only faster-than-FP32 path on x86.
    "ort-int4-weights": [{"name": "ort_weight_only", "config": {"bits": 4, "block_size": 32, "accuracy_level": 4}}],
    "ort-int8-weights": [{"name": "ort_weight_only", "config": {"bits": 8, "block_size": 32, "symmetric": True,
                                                                "accuracy_level": 4}}],
    "torchao-int8": [{"name": "torchao_quantize", "config": {"scheme": "int8_dynamic"}}],
    "torchao-int8-weights": [{"name": "torchao_quantize", "config": {"scheme": "int8_weight_only"}}],
    # Structured pruning without fine-tuning (FLAP importance, bias compensation): FFN neurons only.
    "prune-ffn-10": [{"name": "prune_structured", "config": {"ratio": 0.1, "targets": "ffn"}}],
    "prune-ffn-20": [{"name": "prune_structured", "config": {"ratio": 0.2, "targets": "ffn"}}],
    "prune-20": [{"name": "prune_structured", "config": {"ratio": 0.2, "targets": "heads+ffn"}}],
    # TensorFlow Lite conversions for LiteRT (from a SavedModel, .keras, or a model with a Keras definition).
    "tflite-fp16": [{"name": "tflite_convert", "config": {"mode": "float16"}}],
    "tflite-dynamic-int8": [{"name": "tflite_convert", "config": {"mode": "dynamic_int8"}}],
    "tflite-int8": [{"name": "tflite_convert", "config": {"mode": "int8"}}],
    # PyTorch -> .tflite directly with litert-torch (in its own managed environment; see passes/litert_torch.py).
    "litert-torch": [{"name": "litert_torch_export", "config": {"mode": "float32"}}],
    "litert-torch-int8": [{"name": "litert_torch_export", "config": {"mode": "int8"}}],
    # Generative models: llama.cpp weight types, ONNX Runtime GenAI and OpenVINO GenAI weight compression.
    "gguf-f16": [{"name": "gguf_quantize", "config": {"type": "f16"}}],
    "gguf-q8_0": [{"name": "gguf_quantize", "config": {"type": "q8_0"}}],
    "gguf-q4_1": [{"name": "gguf_quantize", "config": {"type": "q4_1"}}],
    "ort-genai-int4": [{"name": "ort_genai_build", "config": {"precision": "int4", "accuracy_level": 4}}],
    "ort-genai-int8": [{"name": "ort_genai_build", "config": {"precision": "int8", "accuracy_level": 4}}],
    "ort-genai-fp32": [{"name": "ort_genai_build", "config": {"precision": "fp32"}}],
    "ov-genai-int4": [{"name": "ov_genai_export", "config": {"weight_format": "int4", "group_size": 64}}],
    "ov-genai-int8": [{"name": "ov_genai_export", "config": {"weight_format": "int8"}}],
}


# Presets whose result only one runtime can run (torchao lives inside torch; export would drop it).
RUNTIMES = {"torchao-int8": ["torch"], "torchao-int8-weights": ["torch"], "tflite-fp16": ["litert"],
            "tflite-dynamic-int8": ["litert"], "tflite-int8": ["litert"], "litert-torch": ["litert"],
            "litert-torch-int8": ["litert"], "gguf-f16": ["llama_cpp"], "gguf-q8_0": ["llama_cpp"],
            "gguf-q4_1": ["llama_cpp"], "ort-genai-int4": ["ort_genai"], "ort-genai-int8": ["ort_genai"],
            "ort-genai-fp32": ["ort_genai"], "ov-genai-int4": ["openvino_genai"], "ov-genai-int8": ["openvino_genai"]}


def preset(name: str) -> PipelineSpec:
    if name not in PRESETS:
        raise ConfigError(f"unknown pipeline {name!r}", f"choose from {', '.join(PRESETS)}, or define it in --config")
    return PipelineSpec(name=name, passes=PRESETS[name], runtimes=RUNTIMES.get(name))
