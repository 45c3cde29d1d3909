"""Adaptive encoder passes: per-input early exit (threshold or learned depth) and attention-ranked
token pruning, each calibrated to the run's fidelity budget. The output is an `adaptive_encoder`
folder (see adaptive/encoder.py for the format and the controller that runs it).

Calibration uses samples from the end of the workload, disjoint from the evaluation samples, split
in two: the first part fits (ramps, depth predictor), the held-out part sets the threshold so that
cos_min >= 1 - max_drop against the full FP32 model. The threshold is checked by running the real
controller on the held-out part, one input at a time. On top of a torchao recipe (the torch INT8
recipes), the features come from the quantized model and the targets from the FP32 one, so the
budget covers the combination, not each part.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferarena.adaptive import encoder as ae
from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.fsutil import link_or_copy
from inferarena.passes.base import Pass, PassContext

_RIDGE = (0.01, 0.1, 1.0, 10.0)  # ridge strengths tried for the ramps (toward the identity map)


class _Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_drop: float = Field(0.01, gt=0, lt=1, description="Fidelity budget: cos_min against the full FP32 model "
                            "must stay >= 1 - max_drop on the held-out calibration inputs.")
    calibration_samples: int | None = Field(None, ge=8, description="Workload samples used to fit and calibrate "
                                            "(from the end of the workload, never the evaluation samples). "
                                            "Default: up to 256, as many as the workload has beyond those.")
    holdout_fraction: float = Field(0.5, gt=0, lt=1, description="Share of the calibration samples held out "
                                    "to set the threshold.")


class EarlyExitConfig(_Budget):
    min_layer: int = Field(2, ge=1, description="First layer (1-based) with an off-ramp.")


class TokenPruneConfig(_Budget):
    after_layers: list[int] | None = Field(None, description="Layers (1-based) after which pruning may start; "
                                           "default: every layer but the last. The cheapest that meets the budget wins.")
    keep_ratios: list[float] = Field([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], description="Shares of each input's "
                                     "tokens to keep that calibration tries.")


class _Adaptive(Pass):
    accepts = ("hf_encoder",)
    produces = (ae.FORMAT,)
    uses_data = True
    lossy = True

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import torch

        if context is None:
            raise ConfigError(f"{self.name} needs calibration data", "run it inside `inferarena run`")
        batches = context.calibration_batches(config.calibration_samples or max(8, min(256, context.calibration_available)))
        split = max(1, min(len(batches) - 1, round(len(batches) * (1 - config.holdout_fraction))))
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        previous = torch.get_num_threads()
        torch.set_num_threads(context.threads)
        try:
            cal = _Calibration(artifact.path, uses_tt, batches, split, 1.0 - config.max_drop)
            policy, ramps, report = self.calibrate(cal, config)
            out = out_dir / "model"
            shutil.copytree(artifact.path, out, copy_function=link_or_copy)
            ae.write(out, policy, ramps)
            controller = ae.Controller(policy, ramps, cal.stages)
            cos = [float(controller.run(b)[0] @ t) for b, t in zip(cal.holdout, cal.targets[split:])]
            stats = controller.stats.summary()
        finally:
            torch.set_num_threads(previous)
        target = 1.0 - config.max_drop
        report.update(target_cos_min=target, cos_min_holdout=round(min(cos), 6), budget_met=min(cos) >= target,
                      holdout_inputs=len(cos), fit_inputs=split, layers_mean_holdout=stats.get("layers_mean"),
                      tokens_kept_ratio_holdout=stats.get("tokens_kept_ratio"))
        report["policy"] = ae.policy_summary(policy)
        meta = {**artifact.meta, "adaptive": {"method": policy.method},
                "pass_report": {**artifact.meta.get("pass_report", {}), self.name: report}}
        return Artifact(out, ae.FORMAT, meta)

    def calibrate(self, cal: _Calibration, config: Any) -> tuple[ae.Policy, dict[str, np.ndarray], dict]:
        raise NotImplementedError


class _Calibration:
    """FP32 targets and pooled states per layer for the calibration inputs (one input per batch)."""

    def __init__(self, folder: Path, uses_tt: bool, batches: list[dict], split: int, target: float):
        import torch

        from inferarena.frameworks.torchao import apply_recipe, read_recipe
        from inferarena.models.hf_encoder import load_embedding_module

        reference = load_embedding_module(folder, uses_tt)
        with torch.inference_mode():
            self.targets = np.concatenate([reference(**_tensors(b)).numpy() for b in batches])
        module = reference
        if recipe := read_recipe(folder):  # quantized features, FP32 targets: one budget for both
            module = load_embedding_module(folder, uses_tt)
            apply_recipe(module, recipe)
        self.layers = len(module.encoder.encoder.layer)
        self.stages = ae.TorchStages(module.encoder, uses_tt)
        self.batches, self.split, self.target = batches, split, target
        self.holdout = batches[split:]
        pooled = [[] for _ in range(self.layers + 1)]
        for batch in batches:
            hidden = self.stages.embed(batch)
            for layer in range(self.layers):
                hidden = self.stages.layer(layer, hidden, batch["attention_mask"])
                pooled[layer + 1].append(ae.pool(hidden, batch["attention_mask"]))
        self.pooled = [np.concatenate(p) if p else None for p in pooled]  # pooled[l]: after layer l

    def fit_ramps(self, first: int) -> dict[str, np.ndarray]:
        """Per layer, ridge least squares from [pooled, 1] to the final embedding, toward the identity map;
        the strength that fits the held-out part best."""
        ramps = {}
        fit, held = slice(0, self.split), slice(self.split, None)
        for layer in range(first, self.layers):
            x = self.pooled[layer].astype(np.float64)
            best = None
            for strength in _RIDGE:
                w, b = _ridge(x[fit], self.targets[fit].astype(np.float64), strength)
                score = float(np.mean(_cos(ae.normalize(x[held] @ w + b), self.targets[held])))
                if best is None or score > best[0]:
                    best = (score, w, b)
            ramps[f"w{layer}"], ramps[f"b{layer}"] = best[1].astype(np.float32), best[2].astype(np.float32)
        return ramps

    def ramp_cos(self, ramps: dict, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Per input: the ramps' predictions [N, layers+1, H] (None where no ramp) and their cos to the target
        [N, layers+1] (the last layer's own pooled output at index `layers`)."""
        n = len(self.targets)
        guesses = np.zeros((n, self.layers + 1, self.targets.shape[1]), np.float32)
        for layer in range(first, self.layers):
            guesses[:, layer] = ae.ramp(ramps, layer, self.pooled[layer])
        guesses[:, self.layers] = self.pooled[self.layers]
        return guesses, np.einsum("nlh,nh->nl", guesses, self.targets)


def _ridge(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    n, h = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    reg = strength * np.eye(h + 1)
    reg[h, h] = 0.0  # the bias is not pulled anywhere
    prior = np.vstack([np.eye(h, y.shape[1]), np.zeros((1, y.shape[1]))])
    solution = np.linalg.solve(a.T @ a + reg, a.T @ y + reg @ prior)
    return solution[:h], solution[h]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (ae.normalize(a) * ae.normalize(b)).sum(-1)


def _tensors(batch: dict) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in batch.items()}


class EarlyExit(_Adaptive):
    """Per-input early exit: least-squares off-ramps, exit when two consecutive ramps agree (cos >= tau),
    tau the lowest that keeps the held-out inputs within the budget."""

    name = "adaptive_early_exit"
    Config = EarlyExitConfig

    def calibrate(self, cal: _Calibration, config: EarlyExitConfig):
        layers = cal.layers
        if config.min_layer >= layers:
            raise ConfigError(f"min_layer {config.min_layer} leaves no layer to exit from (the model has {layers})",
                              f"set min_layer below {layers}")
        ramps = cal.fit_ramps(config.min_layer)
        guesses, cos = cal.ramp_cos(ramps, config.min_layer)
        held = slice(cal.split, None)
        agree = np.full(cos.shape, -np.inf)  # agree[:, l]: cos(ramp l, ramp l-1), where both exist
        for layer in range(config.min_layer + 1, layers):
            agree[:, layer] = (guesses[:, layer] * guesses[:, layer - 1]).sum(1)
        candidates = sorted(set(np.round(agree[held][np.isfinite(agree[held])], 6).tolist())) + [1.5]
        best = None
        for tau in candidates:
            depth, got = _simulate_exit(agree[held], cos[held], tau, layers)
            if got.min() >= cal.target and (best is None or depth.mean() < best[1]):
                best = (tau, float(depth.mean()), float(got.min()))
        tau, depth_mean, worst = best or (1.5, float(layers), float(cos[held, layers].min()))
        policy = ae.Policy(method="early_exit", layers=layers, min_layer=config.min_layer, tau=tau)
        report = {"tau": tau, "simulated_layers_mean": round(depth_mean, 4), "simulated_cos_min": round(worst, 6),
                  "ramp_cos_mean": {str(k): round(float(cos[held, k].mean()), 4) for k in range(config.min_layer, layers)}}
        if tau > 1:
            report["note"] = "no threshold meets the budget: every input runs the full depth"
        return policy, ramps, report


def _simulate_exit(agree: np.ndarray, cos: np.ndarray, tau: float, layers: int):
    """Depth and cos to the target per input under threshold `tau` (what the controller does)."""
    hits = agree >= tau
    depth = np.where(hits.any(1), hits.argmax(1), layers)
    return depth, cos[np.arange(len(cos)), depth]


class EarlyExitLearned(_Adaptive):
    """Early exit with a learned depth: from the first ramp layer's pooled state, a linear predictor
    sets each input's exit depth (trained on the depth at which its ramp first meets the budget), plus
    the smallest margin that keeps the held-out inputs within the budget."""

    name = "adaptive_early_exit_learned"
    Config = EarlyExitConfig

    def calibrate(self, cal: _Calibration, config: EarlyExitConfig):
        layers, first = cal.layers, config.min_layer
        if first >= layers:
            raise ConfigError(f"min_layer {first} leaves no layer to exit from (the model has {layers})",
                              f"set min_layer below {layers}")
        ramps = cal.fit_ramps(first)
        _, cos = cal.ramp_cos(ramps, first)
        ok = cos[:, first:] >= cal.target  # columns first..layers
        oracle = np.where(ok.any(1), ok.argmax(1) + first, layers).astype(np.float64)
        fit, held = slice(0, cal.split), slice(cal.split, None)
        x = cal.pooled[first].astype(np.float64)
        w, b = _ridge_plain(x[fit], oracle[fit], 1.0)
        predicted = x[held] @ w + b
        best = None
        for margin in np.arange(-float(layers), float(layers) + 0.01, 0.25):
            depth = np.clip(np.ceil(predicted + margin), first, layers).astype(int)
            got = cos[held][np.arange(len(depth)), depth]
            if got.min() >= cal.target:
                best = (float(margin), float(depth.mean()), float(got.min()))
                break  # the smallest margin: depth only grows with it
        margin, depth_mean, worst = best or (float(layers), float(layers), float(cos[held, layers].min()))
        note = {"note": "no margin meets the budget: every input runs the full depth"} if margin >= layers else {}
        ramps["depth_w"], ramps["depth_b"] = w.astype(np.float32), np.array([b], np.float32)
        policy = ae.Policy(method="early_exit_learned", layers=layers, min_layer=first, margin=margin)
        report = {"margin": margin, "simulated_layers_mean": round(depth_mean, 4),
                  "simulated_cos_min": round(worst, 6), "oracle_layers_mean": round(float(oracle[held].mean()), 4),
                  "predictor_mae_layers": round(float(np.abs(predicted - oracle[held]).mean()), 4), **note}
        return policy, ramps, report


def _ridge_plain(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, float]:
    """Ridge regression of a scalar toward zero weights (the bias is free)."""
    mean_x, mean_y = x.mean(0), float(y.mean())
    xc = x - mean_x
    w = np.linalg.solve(xc.T @ xc + strength * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return w, mean_y - float(mean_x @ w)


class TokenPrune(_Adaptive):
    """Training-free token pruning (PoWER-BERT style): after one layer, each input keeps its most-attended
    tokens; the layer and ratio are the cheapest pair that keeps the held-out inputs within the budget."""

    name = "adaptive_token_prune"
    Config = TokenPruneConfig

    def calibrate(self, cal: _Calibration, config: TokenPruneConfig):
        layers = cal.layers
        after = config.after_layers or list(range(1, layers))
        if bad := [a for a in after if not 1 <= a < layers]:
            raise ConfigError(f"after_layers {bad} are outside 1..{layers - 1}", f"pick layers from 1 to {layers - 1}")
        # Cost in token-layers, relative: the layers before pruning run every token, the rest a share.
        grid = sorted(((a + (layers - a) * r) / layers, a, r) for a in after for r in config.keep_ratios)
        targets = cal.targets[cal.split:]
        tried, chosen = [], None
        for cost, a, r in grid:
            policy = ae.Policy(method="token_prune", layers=layers, after_layer=a, keep_ratio=r)
            controller = ae.Controller(policy, {}, cal.stages)
            worst = 1.0
            for batch, t in zip(cal.holdout, targets):
                worst = min(worst, float(controller.run(batch)[0] @ t))
                if worst < cal.target:
                    break  # one input over budget rules the pair out
            tried.append({"after_layer": a, "keep_ratio": r, "cost": round(cost, 4), "cos_min_until_stop": round(worst, 6)})
            if worst >= cal.target:
                chosen = policy
                break
        report = {"tried": tried}
        if chosen is None:
            chosen = ae.Policy(method="token_prune", layers=layers, after_layer=layers - 1, keep_ratio=1.0)
            report["note"] = "no layer and ratio meet the budget: every token is kept"
        report.update(after_layer=chosen.after_layer, keep_ratio=chosen.keep_ratio)
        return chosen, {}, report
