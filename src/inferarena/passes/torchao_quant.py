"""torchao quantization of an `hf_encoder`'s or `hf_causal_lm`'s Linear layers, for the PyTorch eager
and transformers runtimes.

The pass writes a recipe, not quantized weights: its output folder holds the input's files
(hard links where the file system allows, else copies) plus `torchao.json`, the torchao config
serialized with torchao's own allowlisted `config_to_dict`. The torch runtime replays it with
`quantize_` when it loads the folder. Re-quantizing is round-to-nearest, so it is deterministic
and takes about a second; a pickled state dict of torchao tensor subclasses would tie the cache to
one torchao version. The pass still quantizes once itself, so a scheme that torchao cannot apply
fails at build time, not in the measurement worker.

On CPU with torchao 0.18, int4 weights are stored unpacked in int8 (`IntxUnpackedToInt8Tensor`)
and dequantized per call: that variant measures int4's accuracy, not an int4 kernel.

On CUDA the torch runtime replays the recipe on a BF16 copy of the weights on the GPU: INT8 weight-only,
INT8 dynamic (`torch._int_mm`) and FP8 (`fp8_dynamic`: e4m3 weights per row, activations per row at run
time, `torch._scaled_mm`), which needs compute capability 8.9 or newer (Ada, Hopper) and is planned on
such GPUs only (`unsupported_on`). FP8 recipes are written without the trial quantization, which would
need that GPU in the build process. None of the CUDA paths has run on a GPU yet (docs/guide.md, "GPUs").

Example pipeline: `{"name": "torchao_quantize", "config": {"scheme": "int8_dynamic"}}`.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.frameworks.torchao import RECIPE, RECIPE_VERSION, apply_recipe, import_torchao
from inferarena.fsutil import link_or_copy
from inferarena.passes.base import Pass, PassContext


class TorchaoQuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheme: Literal["int8_dynamic", "int8_weight_only", "int4_weight_only", "fp8_dynamic"] = Field(
        "int8_dynamic", description="int8_dynamic: INT8 weights per channel, activations quantized per token at run "
        "time (INT8 GEMM). int8_weight_only: INT8 weights, FP32 math (BF16 on cuda). int4_weight_only: INT4 weights "
        "per group, FP32 math. fp8_dynamic: FP8 e4m3 weights and activations per row (FP8 GEMM), cuda on compute "
        "capability 8.9+ only. Search space: int8_dynamic, int8_weight_only, int4_weight_only (fp8_dynamic where "
        "planned on such a GPU).",
        json_schema_extra={"space": ["int8_dynamic", "int8_weight_only", "int4_weight_only"]})
    group_size: Literal[32, 64, 128] = Field(
        32, description="int4_weight_only only: weights share a scale per group of this many; must divide every "
        "Linear's input width. Search space: 32, 64, 128.", json_schema_extra={"space": [32, 64, 128]})


class TorchaoQuantize(Pass):
    name = "torchao_quantize"
    accepts = ("hf_encoder", "hf_causal_lm")
    produces = ("hf_encoder", "hf_causal_lm")
    Config = TorchaoQuantizeConfig

    @classmethod
    def output_format(cls, input_format: str) -> str:
        return input_format

    @classmethod
    def precision(cls, config: BaseModel) -> str:
        return config.scheme.split("_", 1)[0]  # int8, int4, fp8

    @classmethod
    def unsupported_on(cls, config: BaseModel, device: str, gpu: Any = None) -> str | None:
        if config.scheme != "fp8_dynamic":
            return None
        if device != "cuda":
            return "torchao FP8 runs on CUDA GPUs of compute capability 8.9 or newer only, not on the CPU"
        if gpu is not None and not gpu.supports("fp8"):
            cc = gpu.compute_capability
            return (f"torchao FP8 needs compute capability 8.9 or newer (Ada, Hopper); {gpu.name} has "
                    f"{cc[0]}.{cc[1]}" if cc else "torchao FP8 needs compute capability 8.9 or newer")
        return None

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        from inferarena.models.hf_encoder import load_embedding_module

        if (artifact.path / RECIPE).is_file():
            raise ConfigError(f"{artifact.path} is already quantized with torchao", "apply torchao_quantize once")
        import_torchao()
        recipe = {"version": RECIPE_VERSION, "scheme": config.scheme,
                  "group_size": config.group_size if config.scheme == "int4_weight_only" else None,
                  "torchao_version": importlib.metadata.version("torchao"), "torchao_config": _config_dict(config)}
        if artifact.format == "hf_causal_lm":
            import torch
            from transformers import AutoModelForCausalLM

            module = AutoModelForCausalLM.from_pretrained(str(artifact.path), dtype=torch.float32,
                                                          use_safetensors=True, trust_remote_code=False)
        else:
            module = load_embedding_module(artifact.path, bool(artifact.meta.get("uses_token_type_ids")))
        if config.scheme == "fp8_dynamic":  # the check would need an FP8 GPU in this process: the runtime applies it
            import torch

            layers, quantized = sum(isinstance(m, torch.nn.Linear) for m in module.modules()), None
        else:
            layers, quantized = apply_recipe(module, recipe)
        out = out_dir / "model"
        shutil.copytree(artifact.path, out, copy_function=link_or_copy)
        (out / RECIPE).write_text(json.dumps(recipe, indent=1))
        report = {"scheme": config.scheme, "group_size": recipe["group_size"], "linear_layers": layers,
                  "quantized_layers": quantized, "torchao_version": recipe["torchao_version"]}
        meta = {**artifact.meta, "torchao": {"scheme": config.scheme, "group_size": recipe["group_size"]},
                "pass_report": {**artifact.meta.get("pass_report", {}), self.name: report}}
        return Artifact(out, artifact.format, meta)


def _config_dict(config: TorchaoQuantizeConfig) -> dict[str, Any]:
    import torch
    from torchao.core.config import config_to_dict
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    if config.scheme == "fp8_dynamic":
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

        ao_config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    elif config.scheme == "int8_dynamic":
        ao_config = Int8DynamicActivationInt8WeightConfig()
    elif config.scheme == "int8_weight_only":
        ao_config = Int8WeightOnlyConfig()
    else:  # Int4WeightOnlyConfig's packings need CUDA/XPU/mslk kernels; the intx one runs anywhere.
        ao_config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(config.group_size))
    return config_to_dict(ao_config)


