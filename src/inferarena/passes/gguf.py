"""GGUF passes: dequantize a GGUF into a Hugging Face folder, and requantize a GGUF to another type.

`gguf_to_hf` is the conversion that lets transformers, ONNX Runtime GenAI and OpenVINO GenAI run a
GGUF-only model: transformers reads the GGUF (`gguf_file=`), dequantizing every tensor to FP32.
`gguf_quantize` uses llama.cpp's own quantizer (`llama_model_quantize`). When the source is itself
quantized (SmolLM2 ships as Q4_1 only), other types are made from its dequantized weights
(`allow_requantize`): F16 reproduces the Q4_1 weights exactly, Q8_0 re-rounds them. No weights
closer to the original training run exist on this machine, and the pass's report says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.passes.base import Pass, PassContext

# llama.cpp's enum llama_ftype for the types offered here.
FTYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k_m": 15, "q5_k_m": 17,
          "q6_k": 18}


class GGUFToHFConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GGUFToHF(Pass):
    name = "gguf_to_hf"
    accepts = ("gguf",)
    produces = ("hf_causal_lm",)
    Config = GGUFToHFConfig
    converts = True

    def run(self, artifact: Artifact, config: GGUFToHFConfig, out_dir: Path, context: PassContext | None) -> Artifact:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise RuntimeUnavailable("converting a GGUF to a Hugging Face folder needs transformers and torch",
                                     "pip install 'inferarena[llm]'") from None
        from inferarena.models.causal_lm import causal_lm_artifact

        folder, name = str(artifact.path.parent), artifact.path.name
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds for unsupported GGUFs
            raise ModelError(f"transformers cannot read {name} ({type(exc).__name__}: {str(exc)[:200]})",
                             "transformers reads GGUFs of common architectures (llama, mistral, qwen2...); "
                             "run this model on llama_cpp only") from None
        # A model loaded from a GGUF remembers its quantizer, and save_pretrained refuses to write it.
        if hasattr(model, "hf_quantizer"):
            del model.hf_quantizer
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
        source = artifact.meta.get("precision")
        built = causal_lm_artifact(out_dir, name=artifact.meta.get("name", artifact.path.stem),
                                   pass_report={"dequantized_from": source})
        # The cache renames out_dir when the pass ends, so an absolute tokenizer path would go stale; the
        # source's tokenizer (the same one) stays valid.
        return Artifact(built.path, built.format, {**built.meta, "tokenizer": artifact.meta.get("tokenizer")})


class GGUFQuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal[tuple(FTYPES)] = Field("q8_0", description="llama.cpp weight type to write (f16, q8_0, q4_1, "
                                          "q4_k_m...).")


class GGUFQuantize(Pass):
    name = "gguf_quantize"
    accepts = ("gguf",)
    produces = ("gguf",)
    Config = GGUFQuantizeConfig

    @classmethod
    def precision(cls, config: GGUFQuantizeConfig) -> str:
        return config.type

    def run(self, artifact: Artifact, config: GGUFQuantizeConfig, out_dir: Path,
            context: PassContext | None) -> Artifact:
        try:
            import llama_cpp
        except ImportError:
            raise RuntimeUnavailable("quantizing a GGUF needs llama-cpp-python", "pip install 'inferarena[llm]'") from None
        from inferarena.models.causal_lm import gguf_artifact

        out = out_dir / f"{artifact.path.stem.split('.')[0]}.{config.type.upper()}.gguf"
        source = artifact.meta.get("precision")
        if source == config.type:
            shutil.copyfile(artifact.path, out)
        else:
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = FTYPES[config.type]
            params.allow_requantize = True
            params.nthread = context.threads if context else 0
            code = llama_cpp.llama_model_quantize(str(artifact.path).encode(), str(out).encode(), params)
            if code != 0 or not out.is_file():
                raise ModelError(f"llama.cpp could not quantize {artifact.path.name} to {config.type} (code {code})",
                                 "pick another type; k-quants need rows that are multiples of 256")
        built = gguf_artifact(out, name=artifact.meta.get("name", out.stem))
        report = {"source_type": source, "written_type": built.meta["precision"],
                  "tensor_types": built.meta["tensor_types"]}
        notes = []
        if source not in ("f32", "f16", "bf16", config.type):
            notes.append(f"made from the dequantized {source} weights: {config.type} cannot hold more information "
                         f"than the {source} source")
        kind = config.type.split("_k")[0] + "_k"
        others = [t for t in built.meta["tensor_types"] if not t.startswith(kind) and t not in ("f32", "q8_0")]
        if "_k" in config.type and others:
            notes.append(f"llama.cpp also wrote {', '.join(others)} tensors (k-quants need rows that are multiples "
                         "of 256; smaller blocks stand in)")
        if notes:
            report["note"] = "; ".join(notes)
        return Artifact(built.path, built.format, {**built.meta, "pass_report": report})
