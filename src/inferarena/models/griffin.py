"""Context-conditioned FFN pruning for Llama-style causal LMs on torch: GRIFFIN and its learned twin.

GRIFFIN (Dong et al., arXiv 2404.01365, training-free): within one sequence the same FFN neurons stay
active ("flocking"), so the prompt tells which ones generation needs. At prefill every layer's FFN
runs in full and records, per neuron, the sum over prompt tokens of its squared activation after
each token's activation vector is L2-normalised; the top `keep` share of neurons per layer is kept,
and generation runs on FFN weights sliced to them (gate and up rows, down columns).

`hyper-griffin` decides before prefill: a small MLP maps the mean of the prompt's token embeddings
to per-layer neuron scores. It is trained (passes/decoding.py) on calibration prompts with GRIFFIN's
top-k sets as targets, so prefill runs sliced too. Its weights sit in the model folder as
HYPER_FILE, with the settings in the artifact's `decoding` meta.

The slicing works on modules with gate_proj, up_proj, down_proj and act_fn (Llama, Mistral, Qwen2,
SmolLM...). Anything else is refused with a clear error.
"""

from __future__ import annotations

import time
from pathlib import Path

from inferarena.errors import ModelError

HYPER_FILE = "hyper_griffin.safetensors"  # safetensors, never a pickle


def _mlps(model) -> list:
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") for layer in layers):
        raise ModelError(f"{type(model).__name__} has no model.layers[i].mlp", "GRIFFIN needs a Llama-style causal LM")
    for layer in layers:
        mlp = layer.mlp
        if not all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")):
            raise ModelError(f"{type(mlp).__name__} is not a gated FFN (gate_proj, up_proj, down_proj)",
                             "GRIFFIN needs a Llama-style causal LM")
    return [layer.mlp for layer in layers]


def make_module_class():
    import torch
    import torch.nn.functional as F

    class GriffinMLP(torch.nn.Module):
        """Wraps one gated FFN. Mode `full` records neuron scores; `sliced` runs on the kept neurons."""

        def __init__(self, mlp):
            super().__init__()
            self.mlp = mlp
            self.mode, self.scores, self.sliced = "full", None, None

        def forward(self, x):
            if self.mode == "sliced":
                gate, up, down = self.sliced
                return F.linear(self.mlp.act_fn(F.linear(x, gate)) * F.linear(x, up), down)
            z = self.mlp.act_fn(self.mlp.gate_proj(x)) * self.mlp.up_proj(x)
            if self.mode == "record":
                flat = z.reshape(-1, z.shape[-1]).float()
                normed = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                self.scores = (normed * normed).sum(dim=0)
            return self.mlp.down_proj(z)

        def slice(self, index) -> None:
            import torch

            m = self.mlp  # index_select copies 3-4x faster than fancy indexing here
            self.sliced = (torch.index_select(m.gate_proj.weight, 0, index),
                           torch.index_select(m.up_proj.weight, 0, index),
                           torch.index_select(m.down_proj.weight, 1, index))
            self.mode = "sliced"

    return GriffinMLP


class Griffin:
    """Installs GriffinMLP in a loaded model and drives it: record at prefill, slice, run sliced."""

    def __init__(self, model, keep: float):
        import torch

        self.torch = torch
        wrapper = make_module_class()
        layers = model.model.layers
        mlps = _mlps(model)
        self.width = mlps[0].gate_proj.weight.shape[0]
        self.k = max(1, round(keep * self.width))
        self.modules = []
        for layer, mlp in zip(layers, mlps):
            layer.mlp = wrapper(mlp)
            self.modules.append(layer.mlp)
        ffn = sum(m.mlp.gate_proj.weight.numel() + m.mlp.up_proj.weight.numel() + m.mlp.down_proj.weight.numel()
                  for m in self.modules)
        total = sum(p.numel() for p in model.parameters())
        self.active_params_ratio = (total - ffn * (1 - self.k / self.width)) / total
        self.controller_s: list[float] = []

    def record(self) -> None:
        for m in self.modules:
            m.mode, m.scores = "record", None

    def full(self) -> None:
        for m in self.modules:
            m.mode = "full"

    def recorded_scores(self):
        return self.torch.stack([m.scores for m in self.modules])  # (layers, width)

    def slice_top(self, scores) -> None:
        """Keep each layer's top-k neurons by `scores` (layers, width)."""
        start = time.perf_counter()
        index = self.torch.topk(scores, self.k, dim=-1).indices.sort(dim=-1).values
        for m, idx in zip(self.modules, index):
            m.slice(idx)
        self.controller_s.append(time.perf_counter() - start)

    def kept_sets(self, scores):
        return self.torch.topk(scores, self.k, dim=-1).indices


def hyper_network(embed_dim: int, layers: int, width: int, hidden: int):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(embed_dim, hidden), torch.nn.GELU(),
                               torch.nn.Linear(hidden, layers * width))


def load_hyper(folder: Path, embed_dim: int, layers: int, width: int, hidden: int):
    from safetensors.torch import load_file

    net = hyper_network(embed_dim, layers, width, hidden)
    path = folder / HYPER_FILE
    if not path.is_file():
        raise ModelError(f"{folder} has no {HYPER_FILE}", "rebuild the hyper-griffin variant")
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def prompt_summary(model, ids):
    """The controller's input: the mean of the prompt's token embeddings (no layer has run yet)."""
    return model.get_input_embeddings()(ids).mean(dim=1)  # (batch, embed_dim)
