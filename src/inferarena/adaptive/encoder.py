"""The `adaptive_encoder` format: an encoder folder plus a policy that fits the computation to each
input (early exit, token pruning), and the controller that runs it.

A folder holds the `hf_encoder` files (hard-linked), `adaptive.json` (the policy: method and its
calibrated settings) and, for the early-exit methods, `ramps.safetensors` (one linear off-ramp per
layer, fitted by least squares; safetensors, never a pickle).

The controller runs the encoder layer by layer through `Stages` (a backend: torch modules here) and
makes the per-input decisions in numpy:
- `early_exit`: after each layer from `min_layer`, a ramp maps the pooled hidden state to the final
  embedding; an input leaves the batch when two consecutive ramps agree (cos >= tau), so the rest of
  the batch really gets smaller.
- `early_exit_learned`: a linear predictor reads the pooled output of layer `min_layer` and sets each
  input's depth up front (plus a calibrated margin); the input leaves at that depth through its ramp.
- `token_prune`: after layer `after_layer`, each input keeps the ceil(keep_ratio * its length) tokens
  that received the most attention in that layer; later layers and the pooling see those only.
Every decision is per row and mask-aware, so a batch gives the same outputs as its inputs one by one,
with any padding. Calibration (passes/adaptive.py) uses the same `Controller`, so fit and run agree.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from inferarena.errors import ModelError

FORMAT = "adaptive_encoder"
POLICY = "adaptive.json"
RAMPS = "ramps.safetensors"
POLICY_VERSION = 1


class Policy(BaseModel):
    """What `adaptive.json` holds: the method and its calibrated settings."""

    model_config = ConfigDict(extra="forbid")
    version: int = POLICY_VERSION
    method: Literal["early_exit", "early_exit_learned", "token_prune"]
    layers: int  # the encoder's depth
    min_layer: int = 1  # first layer (1-based) with an off-ramp
    tau: float | None = None  # early_exit: agreement of two consecutive ramps that lets an input leave
    margin: float | None = None  # early_exit_learned: layers added to the predicted depth
    after_layer: int | None = None  # token_prune: the layer (1-based) whose attention ranks the tokens
    keep_ratio: float | None = None  # token_prune: share of each input's tokens kept after it

    def full_depth(self) -> bool:
        """True when calibration found no setting within the budget: the policy never saves anything."""
        if self.method == "early_exit":
            return self.tau is None or self.tau > 1
        if self.method == "early_exit_learned":
            return self.margin is None or self.margin >= self.layers
        return not self.keep_ratio or self.keep_ratio >= 1


def write(folder: Path, policy: Policy, ramps: dict[str, np.ndarray] | None = None) -> None:
    (folder / POLICY).write_text(policy.model_dump_json(indent=1))
    if ramps:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in ramps.items()}, str(folder / RAMPS))


def read(folder: Path) -> tuple[Policy, dict[str, np.ndarray]]:
    try:
        policy = Policy.model_validate_json((folder / POLICY).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / POLICY} is missing or corrupt ({str(exc).splitlines()[0][:120]})",
                         "rebuild the variant (delete its cache folder)") from None
    if policy.version != POLICY_VERSION:
        raise ModelError(f"adaptive policy version {policy.version} is not {POLICY_VERSION}", "rebuild the variant")
    ramps: dict[str, np.ndarray] = {}
    if (folder / RAMPS).is_file():
        from safetensors.numpy import load_file

        ramps = load_file(str(folder / RAMPS))
    return policy, ramps


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over the tokens, L2-normalized: the embedding the plain encoder outputs."""
    weights = mask[..., None].astype(hidden.dtype)
    pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return normalize(pooled)


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ramp(ramps: dict[str, np.ndarray], layer: int, pooled: np.ndarray) -> np.ndarray:
    """The off-ramp of `layer`: the predicted final embedding from that layer's pooled state."""
    return normalize(pooled @ ramps[f"w{layer}"] + ramps[f"b{layer}"])


class Stats:
    """Per-input decisions, summed over calls (thread-safe: streams share one session)."""

    def __init__(self, layers: int):
        self.layers = layers
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.depths = np.zeros(self.layers + 1, dtype=np.int64)  # inputs by the number of layers they used
        self.tokens_real = self.tokens_kept = 0
        self.controller_s = 0.0
        self.batches = 0

    def add(self, depths: np.ndarray, tokens_real: int, tokens_kept: int, controller_s: float) -> None:
        with self.lock:
            self.depths += np.bincount(depths, minlength=self.layers + 1)
            self.tokens_real += tokens_real
            self.tokens_kept += tokens_kept
            self.controller_s += controller_s
            self.batches += 1

    def summary(self) -> dict[str, Any]:
        """The `adaptive.*` figures (see results.METRICS)."""
        with self.lock:
            inputs = int(self.depths.sum())
            if not inputs:
                return {}
            levels = np.arange(self.layers + 1)
            cumulative = np.cumsum(self.depths) / inputs
            # Work done per token-layer, against the full model's: what the policy saved.
            layer_share = float((self.depths * levels).sum()) / (inputs * self.layers)
            out = {"layers_mean": round(float((self.depths * levels).sum()) / inputs, 4),
                   "layers_p50": int(np.searchsorted(cumulative, 0.5)),
                   "layers_p90": int(np.searchsorted(cumulative, 0.9)),
                   "layers_hist": [int(v) for v in self.depths[1:]],
                   "early_exit_ratio": round(float(self.depths[:self.layers].sum()) / inputs, 4),
                   "controller_ms": round(1000 * self.controller_s / max(self.batches, 1), 4),
                   "inputs": inputs}
            if self.tokens_real:
                out["tokens_kept_ratio"] = round(self.tokens_kept / self.tokens_real, 4)
            out["active_params_ratio"] = round(layer_share, 4)
            return out


class Controller:
    """Runs `stages` under `policy`: `run(batch) -> embeddings [B, H]`, recording each input's depth."""

    def __init__(self, policy: Policy, ramps: dict[str, np.ndarray], stages: Any):
        self.policy, self.ramps, self.stages = policy, ramps, stages
        self.stats = Stats(policy.layers)

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        method = self.policy.method
        if self.policy.full_depth():  # nothing to decide: the plain layers, no controller work
            return self._full(batch)
        if method == "token_prune":
            return self._token_prune(batch)
        return self._early_exit(batch, learned=method == "early_exit_learned")

    def _full(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        mask = batch["attention_mask"]
        hidden = self.stages.embed(batch)
        for layer in range(self.policy.layers):
            hidden = self.stages.layer(layer, hidden, mask)
        real = int(mask.sum())
        self.stats.add(np.full(mask.shape[0], self.policy.layers), real, real, 0.0)
        return pool(hidden, mask)

    def _early_exit(self, batch: dict[str, np.ndarray], learned: bool) -> np.ndarray:
        p, stages = self.policy, self.stages
        mask = batch["attention_mask"]
        rows = mask.shape[0]
        hidden = stages.embed(batch)
        out = np.zeros((rows, 0), np.float32)
        depth = np.full(rows, p.layers)
        active = np.arange(rows)
        previous = planned = None
        spent = 0.0
        for layer in range(1, p.layers + 1):
            hidden = stages.layer(layer - 1, hidden, mask)
            if layer == p.layers:
                final = pool(hidden, mask)
                out = _place(out, active, final, rows)
                break
            if layer < p.min_layer:
                continue
            started = time.perf_counter()
            pooled = pool(hidden, mask)
            guess = ramp(self.ramps, layer, pooled)
            if learned:
                if planned is None:  # the depth predictor reads the first ramp layer's pooled state
                    planned = np.ceil(pooled @ self.ramps["depth_w"] + self.ramps["depth_b"][0] + p.margin)
                    planned = np.clip(planned, p.min_layer, p.layers)
                done = planned <= layer
            else:
                done = (np.zeros(len(active), bool) if previous is None
                        else (guess * previous).sum(1) >= p.tau)
            if done.any():
                out = _place(out, active[done], guess[done], rows)
                depth[active[done]] = layer
                keep = ~done
                active, hidden, mask, guess = active[keep], hidden[keep], mask[keep], guess[keep]
                if planned is not None:
                    planned = planned[keep]
            previous = guess
            spent += time.perf_counter() - started
            if not len(active):
                break
        real = int(batch["attention_mask"].sum())
        self.stats.add(depth, real, real, spent)
        return out

    def _token_prune(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        p, stages = self.policy, self.stages
        mask = batch["attention_mask"]
        hidden = stages.embed(batch)
        spent, kept = 0.0, int(mask.sum())
        for layer in range(1, p.layers + 1):
            if layer == p.after_layer:
                hidden, received = stages.layer(layer - 1, hidden, mask, attention_received=True)
                started = time.perf_counter()
                hidden, mask = keep_tokens(hidden, mask, received, p.keep_ratio)
                kept = int(mask.sum())
                spent += time.perf_counter() - started
            else:
                hidden = stages.layer(layer - 1, hidden, mask)
        rows = mask.shape[0]
        self.stats.add(np.full(rows, p.layers), int(batch["attention_mask"].sum()), kept, spent)
        return pool(hidden, mask)


class ControlledSession:
    """What a runtime's session does when a Controller runs it (needs `controller`, `output`, `input_names`)."""

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        return None  # input-dependent: a count on all-ones inputs would misstate the work

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        stats = self.controller.stats.summary()
        if reset:
            self.controller.stats.reset()
        return stats

    def predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {self.output: self.controller.run({n: batch[n] for n in self.input_names if n in batch})}


def keep_tokens(hidden: np.ndarray, mask: np.ndarray, received: np.ndarray, ratio: float):
    """Each row keeps its ceil(ratio * length) most-attended real tokens (at least one); the batch is
    cut to the longest row's count, and the new mask marks each row's kept tokens."""
    lengths = mask.sum(1)
    keep = np.maximum(np.ceil(ratio * lengths - 1e-9).astype(np.int64), 1)
    width = int(keep.max())
    scores = np.where(mask.astype(bool), received, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    gathered = np.take_along_axis(hidden, order[..., None], axis=1)
    new_mask = (np.arange(width)[None, :] < keep[:, None]).astype(mask.dtype)
    return gathered, new_mask


def _place(out: np.ndarray, rows_idx: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    if out.shape[1] == 0:
        out = np.zeros((rows, values.shape[1]), np.float32)
    out[rows_idx] = values
    return out


class TorchStages:
    """The stages on torch: the embeddings, then one encoder layer at a time (BERT-style encoders)."""

    def __init__(self, encoder: Any, uses_token_type_ids: bool, bf16: bool = False):
        import torch

        self.torch, self.encoder, self.uses_tt, self.bf16 = torch, encoder, uses_token_type_ids, bf16
        self.layers = list(encoder.encoder.layer)
        from transformers.masking_utils import create_bidirectional_mask

        self._mask = create_bidirectional_mask
        self._cached: tuple[Any, Any] | None = None  # (the 2-D mask array, its 4-D form for the layers)

    def _run(self, fn):
        torch = self.torch
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return fn(torch)

    def embed(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        def go(torch):
            ids = torch.from_numpy(batch["input_ids"])
            types = torch.from_numpy(batch["token_type_ids"]) if self.uses_tt and "token_type_ids" in batch else None
            return self.encoder.embeddings(input_ids=ids, token_type_ids=types).float().numpy()
        return self._run(go)

    def layer(self, index: int, hidden: np.ndarray, mask: np.ndarray, attention_received: bool = False):
        def go(torch):
            h = torch.from_numpy(hidden)
            m = torch.from_numpy(mask)
            module = self.layers[index]
            cached = self._cached  # one 4-D mask per batch state, not per layer (a local: streams share this)
            if cached is None or cached[0] is not mask:
                cached = self._cached = (mask, self._mask(config=self.encoder.config, inputs_embeds=h, attention_mask=m))
            out = module(h, cached[1])
            out = out[0] if isinstance(out, tuple) else out
            if not attention_received:
                return out.float().numpy()
            return out.float().numpy(), _received(torch, module.attention.self, h, m)
        return self._run(go)


def _received(torch, attention: Any, hidden, mask) -> np.ndarray:
    """Attention each token receives in this layer, averaged over heads and real queries: [B, S]."""
    rows, tokens, _ = hidden.shape
    shape = (rows, tokens, -1, attention.attention_head_size)
    q = attention.query(hidden).view(shape).transpose(1, 2).float()
    k = attention.key(hidden).view(shape).transpose(1, 2).float()
    scores = (q @ k.transpose(-1, -2)) * attention.attention_head_size ** -0.5
    real = mask.bool()
    scores = scores.masked_fill(~real[:, None, None, :], float("-inf")).softmax(-1)  # [B, heads, S, S]
    weights = real[:, None, :, None].float()
    received = (scores * weights).sum((1, 2)) / (weights.sum((1, 2)) * scores.shape[1]).clamp(min=1)
    return received.numpy()


def load(folder: Path, uses_token_type_ids: bool, bf16: bool = False) -> Controller:
    """The controller for an adaptive folder, on torch (the encoder loaded as `hf_encoder` loads it)."""
    from inferarena.models.hf_encoder import load_embedding_module

    policy, ramps = read(folder)
    module = load_embedding_module(folder, uses_token_type_ids)
    from inferarena.frameworks.torchao import apply_recipe, read_recipe

    if recipe := read_recipe(folder):  # adaptive on top of a torchao recipe: quantize, then adapt
        apply_recipe(module, recipe)
    return Controller(policy, ramps, TorchStages(module.encoder, uses_token_type_ids, bf16))


def policy_summary(policy: Policy) -> dict[str, Any]:
    """The static settings, for `session.info` and the pass report."""
    return {k: v for k, v in policy.model_dump().items() if v is not None and k != "version"}
