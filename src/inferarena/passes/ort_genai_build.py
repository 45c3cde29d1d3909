"""ONNX Runtime GenAI's model builder: a Hugging Face causal LM -> an ONNX decoder with KV cache and
`genai_config.json`, weights in INT4/INT8 (MatMulNBits, round-to-nearest per block) or FP32.

Runs `python -m onnxruntime_genai.models.builder` in a subprocess, as its documentation shows;
the builder needs torch, transformers, onnx and onnx-ir. `accuracy_level` picks the activation type
of the INT4/INT8 matmuls on CPU: 4 = INT8 (fastest on x86), 1 = FP32.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.frameworks.torchao import refuse_export
from inferarena.passes.base import Pass, PassContext


class OrtGenAIBuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    precision: Literal["int4", "int8", "fp32"] = Field("int4", description="Weight precision of the matmuls.")
    accuracy_level: Literal[1, 2, 3, 4] = Field(4, description="MatMulNBits activation type: 4 int8, 3 bf16, "
                                                 "2 fp16, 1 fp32.")
    block_size: Literal[16, 32, 64, 128, 256] = Field(32, description="Weights sharing one scale.")


class OrtGenAIBuild(Pass):
    name = "ort_genai_build"
    accepts = ("hf_causal_lm",)
    produces = ("ort_genai",)
    Config = OrtGenAIBuildConfig

    @classmethod
    def precision(cls, config: OrtGenAIBuildConfig) -> str:
        return config.precision

    def run(self, artifact: Artifact, config: OrtGenAIBuildConfig, out_dir: Path,
            context: PassContext | None) -> Artifact:
        import importlib.util

        refuse_export(artifact.path, "the ONNX Runtime GenAI build")
        if importlib.util.find_spec("onnxruntime_genai") is None or importlib.util.find_spec("onnx_ir") is None:
            raise RuntimeUnavailable("ONNX Runtime GenAI's model builder is not installed",
                                     "pip install 'inferarena[llm]'")
        model_dir = out_dir / "model"
        command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(artifact.path),
                   "-o", str(model_dir), "-p", config.precision, "-e", "cpu", "-c", str(out_dir / "cache")]
        if config.precision != "fp32":
            command += ["--extra_options", f"accuracy_level={config.accuracy_level}", f"block_size={config.block_size}"]
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        if done.returncode != 0 or not (model_dir / "genai_config.json").is_file():
            tail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-1:] or ["no output"]
            raise ModelError(f"ONNX Runtime GenAI's builder failed: {tail[0][:300]}",
                             "check that the model's architecture is one the builder supports")
        shutil.rmtree(out_dir / "cache", ignore_errors=True)
        meta = {k: v for k, v in artifact.meta.items() if k not in ("tokenizer", "pass_report", "cached")}
        meta.update(precision=config.precision, weight_bytes=sum(f.stat().st_size for f in model_dir.glob("*.onnx*")),
                    builder_options=config.model_dump())
        return Artifact(model_dir, "ort_genai", meta)

