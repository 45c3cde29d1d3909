"""Static layer dropping (ShortGPT style, Men et al. 2024): remove the encoder layers whose output is
most like their input, as many as the fidelity budget allows.

A layer's redundancy is 1 − cos(its input, its output) over the calibration tokens: the lower, the
less the layer changes the hidden state. Layers are dropped in that order, one more at a time, while
the embedding still meets cos_min ≥ 1 − max_drop against the FP32 reference on the evaluation
samples (the budget the accuracy-controlled INT8 recipes use). The output is a plain `hf_encoder`
with fewer layers, so every runtime runs it (after ONNX export where needed). It is the static
baseline that the adaptive methods (early exit, token pruning) must beat at the same budget.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.models.hf_encoder import encoder_artifact
from inferarena.passes.base import Pass, PassContext
from inferarena.passes.prune import encoder_layers, save_pruned


class LayerDropConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_drop: float = Field(0.01, ge=0, lt=1, description="Fidelity budget: cos_min against the FP32 reference "
                            "must stay >= 1 - max_drop on the evaluation samples.")
    calibration_samples: int = Field(32, ge=1, description="Workload samples whose hidden states rank the layers.")
    min_layers: int = Field(1, ge=1, description="Layers always kept.")


class _ModuleSession:
    """Just enough of a Session for PassContext.fidelity: predict on numpy batches."""

    def __init__(self, module):
        self.module = module

    def predict(self, batch):
        import torch

        with torch.inference_mode():
            return {"sentence_embedding": self.module(**{k: torch.from_numpy(v) for k, v in batch.items()}).numpy()}


class LayerDrop(Pass):
    """Drop the most redundant layers within the budget; the output is an `hf_encoder` folder again.

    Example: `LayerDrop().run(artifact, LayerDropConfig(max_drop=0.01), out_dir, context)`.
    """

    name = "layer_drop"
    accepts = ("hf_encoder",)
    produces = ("hf_encoder",)
    Config = LayerDropConfig
    uses_data = True
    lossy = True

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import torch

        from inferarena.models.hf_encoder import load_embedding_module

        if context is None or context.reference_path is None:
            raise ConfigError("layer_drop needs calibration data and the FP32 reference", "run it inside `inferarena run`")
        batches = context.calibration_batches(config.calibration_samples)
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        previous = torch.get_num_threads()
        torch.set_num_threads(context.threads)
        try:
            module = load_embedding_module(artifact.path, uses_tt)
            layers = encoder_layers(module.encoder)
            redundancy = layer_redundancy(module, batches)
            order = sorted(range(len(layers)), key=lambda i: redundancy[i])
            target = 1.0 - config.max_drop
            dropped: list[int] = []
            trials = []
            for count in range(1, len(layers) - config.min_layers + 1):
                candidate = sorted(order[:count])
                module.encoder.encoder.layer = torch.nn.ModuleList(layer for i, layer in enumerate(layers) if i not in candidate)
                cos_min = context.fidelity(_ModuleSession(module)).cos_min
                trials.append({"dropped": candidate, "cos_min": round(cos_min, 6)})
                if cos_min < target:
                    break
                dropped = candidate
            kept = [layer for i, layer in enumerate(layers) if i not in dropped]
            module.encoder.encoder.layer = torch.nn.ModuleList(kept)
            module.encoder.config.num_hidden_layers = len(kept)
            save_pruned(module.encoder, artifact.path, out_dir)
        finally:
            torch.set_num_threads(previous)
        report = {"layers_before": len(layers), "layers_after": len(kept), "dropped": dropped,
                  "redundancy": [round(r, 6) for r in redundancy], "target_cos_min": target, "trials": trials,
                  "budget_met": trials[0]["cos_min"] >= target if trials else True,
                  "active_params_ratio": round(len(kept) / len(layers), 6)}
        if not dropped:
            report["note"] = f"no layer could go: dropping even the most redundant gives cos_min {trials[0]['cos_min']}"
        fresh = encoder_artifact(out_dir, artifact.meta.get("name", artifact.path.name))
        reports = {**artifact.meta.get("pass_report", {}), self.name: report}
        static = {"method": "layer_drop", "layers_mean": len(kept), "active_params_ratio": report["active_params_ratio"]}
        return Artifact(fresh.path, fresh.format,
                        {**artifact.meta, **fresh.meta, "pass_report": reports, "adaptive": static})


def layer_redundancy(module, batches: list[dict]) -> list[float]:
    """Per layer, 1 − cos(input, output) of the hidden states, averaged over the real (unpadded) tokens."""
    import torch

    total, tokens = None, 0
    with torch.inference_mode():
        for batch in batches:
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            kwargs = {k: v for k, v in tensors.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = module.encoder(**kwargs, output_hidden_states=True).hidden_states
            mask = tensors["attention_mask"].bool()
            change = torch.stack([1 - torch.nn.functional.cosine_similarity(a, b, dim=-1)[mask]
                                  for a, b in zip(hidden[:-1], hidden[1:])]).sum(dim=1)
            total = change if total is None else total + change
            tokens += int(mask.sum())
    return [float(v) / max(tokens, 1) for v in total]
