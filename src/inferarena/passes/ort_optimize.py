"""ONNX Runtime graph optimization, saved offline, plus the transformer optimizer's fusions.

Reports the node count and op counts before and after, and which fused operators appeared.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.passes.base import Pass, PassContext

LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OrtOptimizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["basic", "extended", "all"] = Field(
        "extended", description="ORT offline optimization level. Search space: basic, extended, all.",
        json_schema_extra={"space": ["basic", "extended", "all"]},
    )
    transformer_fusion: bool = Field(
        True, description="Run onnxruntime.transformers' optimizer first (Attention, SkipLayerNorm, BiasGelu fusions) "
        "for transformer encoders. Search space: true, false.", json_schema_extra={"space": [True, False]},
    )


def op_counts(path: Path) -> Counter:
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


class OrtOptimize(Pass):
    name = "ort_optimize"
    accepts = ("onnx",)
    produces = ("onnx",)
    Config = OrtOptimizeConfig

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import onnxruntime as ort

        before = op_counts(artifact.path)
        source, fused = artifact.path, {}
        if config.transformer_fusion and artifact.meta.get("model_type") in ("bert", "roberta", "distilbert"):
            from onnxruntime.transformers import optimizer

            # num_heads/hidden_size 0: the optimizer reads them from the graph.
            model = optimizer.optimize_model(str(artifact.path), model_type="bert", num_heads=0, hidden_size=0,
                                             opt_level=0)
            fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
            source = out_dir / "fused.onnx"
            model.save_model_to_file(str(source))
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[config.level])
        out = out_dir / "model.onnx"
        options.optimized_model_filepath = str(out)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        if source != artifact.path:
            source.unlink()
        after = op_counts(out)
        report = {
            "nodes_before": sum(before.values()),
            "nodes_after": sum(after.values()),
            "fused_ops": fused,
            "ops_added": {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)},
            "ops_removed": {k: v - after.get(k, 0) for k, v in before.items() if v > after.get(k, 0)},
        }
        return Artifact(out, "onnx", {**artifact.meta, "pass_report": {**artifact.meta.get("pass_report", {}),
                                                                         self.name: report}})
