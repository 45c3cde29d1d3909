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
            m = self.mlp
            self.sliced = (_select(m.gate_proj.weight, 0, index), _select(m.up_proj.weight, 0, index),
                           _select(m.down_proj.weight, 1, index))
            self.mode = "sliced"

    return GriffinMLP


def _select(weight, dim: int, index):
    """Rows (dim 0) or columns (dim 1) of a Linear weight: a plain tensor, or torchao's per-row Int8Tensor,
    rebuilt from its sliced int8 data (and, for rows, scales) so torchao's own kernel runs the slice."""
    import torch

    if type(weight).__name__ != "Int8Tensor":  # index_select copies 3-4x faster than fancy indexing here
        return torch.index_select(weight, dim, index)
    rows, cols = weight.qdata.shape
    symmetric = weight.zero_point is None or not bool(weight.zero_point.any())  # torchao stores zeros
    if not symmetric or weight.act_quant_kwargs is not None or weight.act_pre_scale is not None \
            or list(weight.block_size) != [1, cols]:
        raise ModelError("GRIFFIN slices torchao's per-row symmetric INT8 weight-only tensors only",
                         "use the int8_weight_only scheme (torchao's default granularity) under griffin")
    qdata = torch.index_select(weight.qdata, dim, index)
    keep_rows = (lambda t: None if t is None else torch.index_select(t, 0, index)) if dim == 0 else (lambda t: t)
    return type(weight)(qdata, keep_rows(weight.scale), [1, qdata.shape[1]], weight.dtype,
                        zero_point=keep_rows(weight.zero_point))


class Griffin:
    """Installs GriffinMLP in a loaded model and drives it: record at prefill, slice, run sliced."""

    def __init__(self, model, keep: float):
        import torch

        self.torch = torch
        wrapper = make_module_class()
        layers = model.model.layers
        mlps = _mlps(model)
        self.width = mlps[0].gate_proj.weight.shape[0]
        self.set_keep(keep)
        self.modules = []
        for layer, mlp in zip(layers, mlps):
            layer.mlp = wrapper(mlp)
            self.modules.append(layer.mlp)
        self._ffn = sum(m.mlp.gate_proj.weight.numel() + m.mlp.up_proj.weight.numel() + m.mlp.down_proj.weight.numel()
                        for m in self.modules)
        self._total = sum(p.numel() for p in model.parameters())
        self.model = model
        self.controller_s: list[float] = []

    def set_keep(self, keep: float) -> None:
        self.k = max(1, round(keep * self.width))

    @property
    def active_params_ratio(self) -> float:
        return (self._total - self._ffn * (1 - self.k / self.width)) / self._total

    def prefill(self, ids, hyper=None):
        """Prefill one prompt and choose its neurons: GRIFFIN from the prompt's own FFN activations
        (prefill in full), or a hypernetwork before prefill (prefill sliced). Call under inference_mode."""
        if hyper is not None:
            start = time.perf_counter()
            scores = hyper(prompt_summary(self.model, ids))[0].view(len(self.modules), -1)
            self.slice_top(scores.float())
            self.controller_s[-1] = time.perf_counter() - start  # the network's time and the slicing
            return self.model(input_ids=ids, use_cache=True)
        self.record()
        result = self.model(input_ids=ids, use_cache=True)
        self.slice_top(self.recorded_scores())
        return result

    def split_logprobs(self, tokens: list[int], hyper=None):
        """Teacher-forced log-probabilities, as generation runs: the first half of the text is the prompt
        that picks the neurons; the second half is scored on the sliced FFNs, after that prompt's KV cache."""
        torch = self.torch
        half = max(1, len(tokens) // 2)
        with torch.inference_mode():
            head = self.prefill(torch.tensor([tokens[:half]]), hyper)
            tail = self.model(input_ids=torch.tensor([tokens[half:]]), past_key_values=head.past_key_values,
                              use_cache=True)
            logits = torch.cat([head.logits[0], tail.logits[0]])[:-1].float()
            picked = torch.log_softmax(logits, dim=-1)[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])]
        self.full()
        return picked.double().numpy()

    def calibrate_keep(self, texts: list[list[int]], grid: list[float], max_increase_pct: float, hyper=None) -> dict:
        """The smallest keep share in `grid` whose perplexity on `texts` (split as `split_logprobs`) is within
        `max_increase_pct` of the full model's; the largest share in the grid if none is. Sets it."""
        import numpy as np

        torch = self.torch
        self.full()
        with torch.inference_mode():
            full = []
            for t in texts:
                logits = self.model(input_ids=torch.tensor([t])).logits[0, :-1].float()
                full.append(torch.log_softmax(logits, -1)[torch.arange(len(t) - 1), torch.tensor(t[1:])].double().numpy())
        reference = float(np.exp(-np.concatenate(full).mean()))
        tried = {}
        for keep in sorted(grid):
            self.set_keep(keep)
            ppl = float(np.exp(-np.concatenate([self.split_logprobs(t, hyper) for t in texts]).mean()))
            tried[keep] = round(100.0 * (ppl / reference - 1), 2)
            if tried[keep] <= max_increase_pct:
                break
        chosen = next((k for k, d in tried.items() if d <= max_increase_pct), max(tried))
        self.set_keep(chosen)
        self.controller_s.clear()
        return {"keep": chosen, "met": tried[chosen] <= max_increase_pct, "budget_ppl_increase_pct": max_increase_pct,
                "calibration_ppl": round(reference, 3), "ppl_increase_pct_by_keep": {str(k): v for k, v in tried.items()},
                "calibration_tokens": sum(len(t) for t in texts)}

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
