"""Export an `hf_encoder` (batch and sequence axes dynamic) or a `torch_module` (batch axis dynamic) to
ONNX with the dynamo exporter.

Two traps, both seen with transformers 5.x: the legacy exporter (dynamo=False) silently produced
wrong outputs, and tracing with an all-ones attention mask drops the mask from the graph. So the
trace uses real padded inputs, and every variant is checked against the reference afterwards.

Attention is exported as transformers' eager code (MatMul, Add mask, Softmax, MatMul), not as its SDPA
call: the SDPA export wraps the softmax in IsNaN/Where guards that stop OpenVINO's CPU plugin fusing
the attention into one kernel. Measured on MiniLM INT8 by bench/export_attention.py (nncf-int8, OpenVINO
THROUGHPUT, sorted batches of 16, this 2-core VM, 5 interleaved rounds): eager 1.07x SDPA (medians 587 /
551 sentences/s), 6 fused attention kernels against none, cos_min 0.9958 against 0.9942. `attention:
sdpa` keeps the other export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.frameworks.torchao import refuse_export
from inferarena.models.hf_encoder import OUTPUT_NAME, input_names, load_embedding_module
from inferarena.passes.base import Pass


class ExportOnnxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opset: int = Field(18, ge=17, description="ONNX opset version.")


class ExportModelOnnxConfig(ExportOnnxConfig):
    attention: Literal["eager", "sdpa"] = Field(
        "eager", description="How a transformer's attention is written into the graph: eager (plain MatMul/"
        "Softmax ops, which OpenVINO fuses into one attention kernel) or sdpa (torch's scaled_dot_product_"
        "attention, exported with NaN guards). Only hf_encoder models have a choice.")


class ExportOnnx(Pass):
    name = "export_onnx"
    accepts = ("hf_encoder", "torch_module")
    produces = ("onnx",)
    converts = True
    Config = ExportModelOnnxConfig

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context=None) -> Artifact:
        import torch

        refuse_export(artifact.path, "ONNX export")
        if artifact.format == "torch_module":
            return self._module(artifact, config, out_dir)
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        module = load_embedding_module(artifact.path, uses_tt)
        module.encoder.set_attn_implementation(config.attention)
        names = input_names(uses_tt)
        # Real padding: the second row is shorter, so the mask is not all ones and stays in the graph.
        ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
        mask = torch.ones(2, 16, dtype=torch.int64)
        mask[1, 9:] = 0
        example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        out = out_dir / "model.onnx"
        torch.onnx.export(
            module,
            tuple(example[n] for n in names),
            str(out),
            dynamo=True,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_shapes={n: {0: batch, 1: seq} for n in names},
            opset_version=config.opset,
            optimize=True,
            verbose=False,
        )
        return Artifact(out, "onnx", dict(artifact.meta))

    def _module(self, artifact: Artifact, config: BaseModel, out_dir: Path) -> Artifact:
        """A `torch_module` model: traced on random inputs of its declared shapes, the batch axis dynamic."""
        import torch

        from inferarena.models import torch_module

        module = torch_module.build(artifact)
        specs = artifact.meta["inputs"]
        example = tuple(torch.randn(torch_module.example_shape(s, 2)).to(getattr(torch, s["dtype"])) for s in specs)
        batch = torch.export.Dim("batch")
        out = out_dir / "model.onnx"
        torch.onnx.export(
            module, example, str(out), dynamo=True, input_names=[s["name"] for s in specs],
            output_names=[artifact.meta["output_name"]],
            dynamic_shapes=tuple({0: batch} for _ in specs), opset_version=config.opset, optimize=True, verbose=False,
        )
        return Artifact(out, "onnx", dict(artifact.meta))


class ExportAdaptiveOnnx(Pass):
    """An `adaptive_encoder` folder as one ONNX graph per stage (adaptive/onnx_stages.py), for ONNX Runtime."""

    name = "export_adaptive_onnx"
    accepts = ("adaptive_encoder",)
    produces = ("adaptive_onnx",)
    converts = True
    Config = ExportOnnxConfig

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context=None) -> Artifact:
        from inferarena.adaptive import onnx_stages as adaptive_onnx

        refuse_export(artifact.path, "ONNX export")
        out = out_dir / "model"
        adaptive_onnx.export(Path(artifact.path), out, bool(artifact.meta.get("uses_token_type_ids")), config.opset)
        return Artifact(out, adaptive_onnx.FORMAT, dict(artifact.meta))
