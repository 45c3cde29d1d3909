"""One explicit registry per axis: name -> "module:Class". Nothing is imported until it is used.

Adding a runtime, model source, pass, scenario or kind means adding its file plus one line here.
CLI choices are read from these dicts.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

RUNTIMES: dict[str, str] = {
    "torch": "inferarena.runtimes.torch_eager:TorchEager",
    "onnxruntime": "inferarena.runtimes.ort:OnnxRuntime",
    "openvino": "inferarena.runtimes.ov:OpenVINO",
    "tensorflow": "inferarena.runtimes.tensorflow:TensorFlow",
    "litert": "inferarena.runtimes.litert:LiteRT",
    # Generative runtimes (kind "generate"): token streams, measured by the llm_* scenarios.
    "llama_cpp": "inferarena.runtimes.llama_cpp:LlamaCpp",
    "transformers": "inferarena.runtimes.transformers_lm:TransformersLM",
    "ort_genai": "inferarena.runtimes.ort_genai:OrtGenAI",
    "openvino_genai": "inferarena.runtimes.ov_genai:OpenVINOGenAI",
}

# Order matters: the first source that claims a --model spec loads it.
MODEL_SOURCES: dict[str, str] = {
    "minilm": "inferarena.models.minilm:MiniLM",
    "efficientnet-lite0": "inferarena.models.efficientnet_lite:EfficientNetLite0",
    "onnx_file": "inferarena.models.onnx_file:OnnxFile",
    "openvino_ir": "inferarena.models.openvino_ir:OpenVINOIR",
    "tflite_file": "inferarena.models.tf_files:TFLiteFile",
    "savedmodel_dir": "inferarena.models.tf_files:SavedModelDir",
    "keras_file": "inferarena.models.tf_files:KerasFile",
    "smollm2": "inferarena.models.llm:SmolLM2",
    "qwen-coder-0.5b": "inferarena.models.qwen:QwenCoder05B",  # PyPI data wheels, joined and sha256-checked
    "qwen-coder-1.5b": "inferarena.models.qwen:QwenCoder15B",
    "gguf_file": "inferarena.models.llm:GGUFFile",
    "hf_causal_lm": "inferarena.models.llm:HFCausalLM",  # a folder whose config names a *ForCausalLM
    "hf_folder": "inferarena.models.hf_folder:HFFolder",  # any other folder: last
}

# Format conversions and optimization passes.
PASSES: dict[str, str] = {
    "export_onnx": "inferarena.passes.export_onnx:ExportOnnx",
    "export_adaptive_onnx": "inferarena.passes.export_onnx:ExportAdaptiveOnnx",
    "export_tf": "inferarena.passes.tf_convert:ExportTF",
    "tflite_convert": "inferarena.passes.tf_convert:TFLiteConvert",
    "litert_torch_export": "inferarena.passes.litert_torch:LiteRTTorchExport",
    "ort_optimize": "inferarena.passes.ort_optimize:OrtOptimize",
    "ort_quantize": "inferarena.passes.ort_quantize:OrtQuantize",
    "nncf_quantize": "inferarena.passes.nncf_ov:NncfQuantize",
    "nncf_compress_weights": "inferarena.passes.nncf_ov:NncfCompressWeights",
    "ort_weight_only": "inferarena.passes.ort_weight_only:OrtWeightOnly",
    "torchao_quantize": "inferarena.passes.torchao_quant:TorchaoQuantize",
    "prune_structured": "inferarena.passes.prune:StructuredPrune",
    "gguf_to_hf": "inferarena.passes.gguf:GGUFToHF",
    "gguf_quantize": "inferarena.passes.gguf:GGUFQuantize",
    "ort_genai_build": "inferarena.passes.ort_genai_build:OrtGenAIBuild",
    "ov_genai_export": "inferarena.passes.ov_genai_export:OVGenAIExport",
    "layer_drop": "inferarena.passes.layer_drop:LayerDrop",
    "adaptive_early_exit": "inferarena.passes.adaptive:EarlyExit",
    "adaptive_early_exit_learned": "inferarena.passes.adaptive:EarlyExitLearned",
    "adaptive_token_prune": "inferarena.passes.adaptive:TokenPrune",
    "speculative_decoding": "inferarena.passes.decoding:SpeculativeDecoding",
    "griffin": "inferarena.passes.decoding:Griffin",
    "hyper_griffin": "inferarena.passes.decoding:HyperGriffin",
}

# Task-accuracy evaluators; each applies to models whose artifact.meta["task"] equals its `task`.
EVALUATORS: dict[str, str] = {
    "lee_docsim": "inferarena.evaluators.similarity:LeeDocSim",
    "wordsim353": "inferarena.evaluators.similarity:WordSim353",
    "simlex999": "inferarena.evaluators.similarity:SimLex999",
    "imagenet_photos": "inferarena.evaluators.imagenet:ImagenetPhotos",
}

# Model servers for `serve-bench`, each run in its own managed environment.
SERVERS: dict[str, str] = {
    "triton": "inferarena.serving.triton:Triton",
    "torchserve": "inferarena.serving.torchserve:TorchServe",
    "mlserver": "inferarena.serving.mlserver:MLServer",
}

SCENARIOS: dict[str, str] = {
    "single_stream": "inferarena.scenarios.mlperf:SingleStream",
    "multi_stream": "inferarena.scenarios.mlperf:MultiStream",
    "server": "inferarena.scenarios.mlperf:Server",
    "offline": "inferarena.scenarios.mlperf:Offline",
    "llm_single_stream": "inferarena.scenarios.generation:LLMSingleStream",
    "llm_offline": "inferarena.scenarios.generation:LLMOffline",
    "llm_server": "inferarena.scenarios.generation:LLMServer",
    "workflow": "inferarena.scenarios.agent_tasks:WorkflowTasks",  # `inferarena agents`: tasks through a multi-agent workflow
}


# Kinds of model: what each declares (scenarios, jobs, profiles, report, serving) so the core never branches.
KINDS: dict[str, str] = {
    "predict": "inferarena.kinds.predict:Predict",
    "generate": "inferarena.kinds.generate:Generate",
    "workflow": "inferarena.kinds.workflow:Workflow",
}


# The gate's verifiers (`inferarena agents`): each scores one agent message, cheapest first.
VERIFIERS: dict[str, str] = {
    "format": "inferarena.agents.verifiers:Format",
    "regex": "inferarena.agents.verifiers:Regex",
    "json": "inferarena.agents.verifiers:Json",
    "arithmetic": "inferarena.agents.verifiers:Arithmetic",
    "code": "inferarena.agents.verifiers:Code",
    "auditor": "inferarena.agents.verifiers:Auditor",
}


# `inferarena deploy`: a measured variant written out as a bundle for one server (or a Dockerfile).
DEPLOY_TARGETS: dict[str, str] = {
    "triton": "inferarena.deploy.triton:Triton",
    "torchserve": "inferarena.deploy.torchserve:TorchServe",
    "mlserver": "inferarena.deploy.mlserver:MLServer",
    "kserve": "inferarena.deploy.kserve:KServe",
    "docker": "inferarena.deploy.docker:Docker",
}


# How jobs run: a fresh process each (spawn, the default), in this process (inline: tests, --debug), or on a Ray cluster.
LAUNCHERS: dict[str, str] = {
    "spawn": "inferarena.launchers:Spawn",
    "inline": "inferarena.launchers:Inline",
    "ray": "inferarena.launchers.ray:RayLauncher",  # Ray tasks on a cluster's nodes (--launcher ray)
}


def _add_plugins(spec: str) -> None:
    """`INFERARENA_PLUGINS="runtimes.NAME=module:Class;passes.NAME=module:Class"` adds plugins from
    outside the package (a user's own, a test suite's misbehaving ones) to an axis. Spawned jobs
    inherit the variable, so they see the same registry."""
    axes = {"runtimes": RUNTIMES, "model_sources": MODEL_SOURCES, "passes": PASSES, "evaluators": EVALUATORS,
            "servers": SERVERS, "scenarios": SCENARIOS, "verifiers": VERIFIERS, "deploy_targets": DEPLOY_TARGETS}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        key, _, target = item.partition("=")
        axis, _, name = key.strip().partition(".")
        if axis not in axes or not name or ":" not in target:
            warnings.warn(f"INFERARENA_PLUGINS: ignored {item!r} (write AXIS.NAME=module:Class, AXIS one of "
                          f"{', '.join(axes)})", stacklevel=2)
            continue
        axes[axis][name] = target.strip()


_add_plugins(os.environ.get("INFERARENA_PLUGINS", ""))


def load(axis: dict[str, str], name: str) -> Any:
    """Import and return the plugin class registered under `name`."""
    module_name, _, attr = axis[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
