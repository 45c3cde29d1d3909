"""The `adaptive_onnx` format: an adaptive encoder as one ONNX graph per stage, for ONNX Runtime.

Early exit and token pruning change the computation between layers, so the model is not one graph:
the controller (adaptive/encoder.py, the same one torch runs) calls a graph per stage and makes
its per-input decisions in numpy between them. The folder holds `embed.onnx` (embeddings), one
`layer{i}.onnx` per encoder layer (hidden states and the 2-D mask in, hidden states out; the additive
attention mask is built inside), for token pruning `layer{k}_received.onnx` (the same layer, also
returning the attention each token received), and the policy and ramps of the adaptive folder.

Why per-block graphs rather than one graph with If/Loop or TopK/Gather: the exits shrink the batch
row by row and pruning shrinks each row to its own length, which ONNX control flow expresses only
with padding back to full shapes (no saving) or with data-dependent shapes that exporters and ORT's
optimizer handle poorly; per-block graphs keep every stage a plain, fully optimized graph, at the
cost of one ORT call per layer (tens of microseconds). Exported with the dynamo exporter on real
padded inputs, batch and sequence axes dynamic (see passes/export_onnx.py for why).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from inferarena.adaptive import encoder as ae
from inferarena.errors import ModelError

FORMAT = "adaptive_onnx"


def export(source: Path, out: Path, uses_token_type_ids: bool, opset: int = 18) -> None:
    """Write the stage graphs of the adaptive folder `source` into `out`, with its policy and ramps."""
    import torch

    from inferarena.models.hf_encoder import load_embedding_module

    policy, _ = ae.read(source)
    encoder = load_embedding_module(source, uses_token_type_ids).encoder
    out.mkdir(parents=True, exist_ok=True)
    for name in (ae.POLICY, ae.RAMPS):
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 9:] = 0  # real padding, so the mask stays in the graphs
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")

    def save(module, args, names, outputs, path):
        torch.onnx.export(module.eval(), args, str(path), dynamo=True, input_names=names, output_names=outputs,
                          dynamic_shapes=tuple({0: batch, 1: seq} for _ in names), opset_version=opset,
                          optimize=True, verbose=False)

    Embed, Layer = _module_classes()
    embed = Embed(encoder.embeddings, uses_token_type_ids)
    embed_args = (ids, torch.zeros_like(ids)) if uses_token_type_ids else (ids,)
    embed_names = ["input_ids", "token_type_ids"] if uses_token_type_ids else ["input_ids"]
    save(embed, embed_args, embed_names, ["hidden"], out / "embed.onnx")
    with torch.inference_mode():
        hidden = embed(*embed_args)
    hidden = hidden.detach().clone()
    for index, layer in enumerate(encoder.encoder.layer):
        save(Layer(layer, False), (hidden, mask), ["hidden", "attention_mask"], ["hidden_out"], out / f"layer{index}.onnx")
        if policy.method == "token_prune" and policy.after_layer == index + 1:
            save(Layer(layer, True), (hidden, mask), ["hidden", "attention_mask"], ["hidden_out", "received"],
                 out / f"layer{index}_received.onnx")


def _module_classes():
    import torch

    class Embed(torch.nn.Module):
        def __init__(self, embeddings, uses_tt: bool):
            super().__init__()
            self.embeddings, self.uses_tt = embeddings, uses_tt

        def forward(self, input_ids, token_type_ids=None):
            return self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids if self.uses_tt else None)

    class Layer(torch.nn.Module):
        def __init__(self, layer, received: bool):
            super().__init__()
            self.layer, self.received = layer, received

        def forward(self, hidden, attention_mask):
            additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
            out = self.layer(hidden, additive)
            out = out[0] if isinstance(out, tuple) else out
            if not self.received:
                return out
            return out, ae._received(torch, self.layer.attention.self, hidden, attention_mask)

    return Embed, Layer


class OrtStages:
    """The controller's stages on ONNX Runtime: one InferenceSession per graph, sharing the options."""

    def __init__(self, folder: Path, options: Any, uses_token_type_ids: bool):
        import onnxruntime as ort

        policy, _ = ae.read(folder)
        self.uses_tt = uses_token_type_ids

        def session(name: str):
            path = folder / name
            if not path.is_file():
                raise ModelError(f"{path} is missing", "rebuild the variant (delete its cache folder)")
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        self.embed_session = session("embed.onnx")
        self.uses_tt = "token_type_ids" in {i.name for i in self.embed_session.get_inputs()}  # as exported
        self.layers = [session(f"layer{i}.onnx") for i in range(policy.layers)]
        self.received = {}
        if policy.method == "token_prune" and policy.after_layer:
            index = policy.after_layer - 1
            self.received[index] = session(f"layer{index}_received.onnx")

    def embed(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {"input_ids": batch["input_ids"]}
        if self.uses_tt:
            feed["token_type_ids"] = batch.get("token_type_ids", np.zeros_like(batch["input_ids"]))
        return self.embed_session.run(None, feed)[0]

    def layer(self, index: int, hidden: np.ndarray, mask: np.ndarray, attention_received: bool = False):
        feed = {"hidden": np.ascontiguousarray(hidden, dtype=np.float32),
                "attention_mask": np.ascontiguousarray(mask, dtype=np.int64)}
        if attention_received:
            out, received = self.received[index].run(None, feed)
            return out, received
        return self.layers[index].run(None, feed)[0]


def load(folder: Path, options: Any, uses_token_type_ids: bool) -> ae.Controller:
    policy, ramps = ae.read(folder)
    return ae.Controller(policy, ramps, OrtStages(folder, options, uses_token_type_ids))
