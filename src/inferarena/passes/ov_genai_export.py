"""Hugging Face causal LM -> OpenVINO GenAI folder (IR with stateful KV cache, plus the tokenizer and
detokenizer IRs), with INT4 or INT8 weight compression (NNCF), through `optimum-cli export openvino`.

optimum-intel pins an older transformers than the rest of the stack and pulls a torchvision that
breaks, so the export runs in an environment inferarena creates and manages (`inferarena.envs`,
once, a few minutes), as a job; the OpenVINO GenAI runtime then loads the result in this process.
Group size 64: 128 does not divide SmolLM2's hidden size of 576. INT4 is asymmetric by default (NNCF keeps
the tied embedding / LM head in INT8); INT8 is asymmetric per channel. The Python API equivalent
`main_export(ov_config=...)` silently skips compression, so the CLI is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.envs import Environment, run_job
from inferarena.frameworks.torchao import refuse_export
from inferarena.passes.base import Pass, PassContext

# OpenVINO and its tokenizers pinned to the versions the runtime in inferarena's own venv loads.
# optimum-intel 2.2.0 moves transformers to 5.5 and pulls torchvision 0.28, whose `torchvision::nms` fails to
# register against torch 2.13 and breaks optimum-cli; nothing needs it, so it is removed.
ENVIRONMENT = Environment("optimum-intel", ("optimum-intel[openvino]==2.2.0", "openvino==2026.4.1",
                                            "openvino-tokenizers==2026.4.1.0", "nncf"), remove=("torchvision",))


class OVGenAIExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight_format: Literal["int4", "int8", "fp16", "fp32"] = Field("int4", description="Weight compression.")
    group_size: int = Field(64, ge=-1, description="INT4 weights sharing one scale (-1: per channel).")
    ratio: float = Field(1.0, gt=0, le=1, description="Share of layers in INT4; the rest INT8.")
    sym: bool = Field(False, description="Symmetric INT4 (asymmetric keeps more accuracy).")
    draft_weight_format: Literal["int4", "int8"] | None = Field(
        None, description="Also export a draft build in this format, for OpenVINO GenAI's speculative decoding "
        "(the export verifies its drafts).")
    draft_tokens: int = Field(4, ge=1, le=32, description="Draft tokens proposed per step (with draft_weight_format).")


class OVGenAIExport(Pass):
    name = "ov_genai_export"
    accepts = ("hf_causal_lm",)
    produces = ("ov_genai",)
    Config = OVGenAIExportConfig

    @classmethod
    def precision(cls, config: OVGenAIExportConfig) -> str:
        return config.weight_format

    def run(self, artifact: Artifact, config: OVGenAIExportConfig, out_dir: Path,
            context: PassContext | None) -> Artifact:
        refuse_export(artifact.path, "the OpenVINO export")
        model_dir = out_dir / "model"
        export = config.model_dump(exclude={"draft_weight_format", "draft_tokens"})
        result = run_job(ENVIRONMENT, "inferarena.passes.ov_genai_export_job",
                         {"model": str(artifact.path), "out": str(model_dir), **export})
        meta = {k: v for k, v in artifact.meta.items() if k not in ("tokenizer", "pass_report", "cached", "decoding")}
        meta.update(precision=config.weight_format, exporter=result,
                    weight_bytes=sum(f.stat().st_size for f in model_dir.glob("openvino_model.bin")))
        if config.draft_weight_format:  # the draft sits inside the folder: the cache moves them together
            run_job(ENVIRONMENT, "inferarena.passes.ov_genai_export_job",
                    {"model": str(artifact.path), "out": str(model_dir / "draft"),
                     **{**export, "weight_format": config.draft_weight_format}})
            meta["decoding"] = {"method": "draft_model", "num_tokens": config.draft_tokens, "draft_dir": "draft",
                                "draft_type": config.draft_weight_format}
        return Artifact(model_dir, "ov_genai", meta)
