"""Decoding passes for causal LMs: they change how tokens are produced, not the weights on disk.

Each writes the model again (hard links, so no bytes are copied) with a `decoding` entry in its meta
that the generative runtimes read (runtimes/transformers_lm.py, runtimes/llama_cpp.py); a runtime that
cannot honour the method refuses the artifact, so a variant never runs plain under a method's name.
Conversions keep the entry (passes.apply): a GGUF marked for prompt lookup is still marked after
gguf_to_hf.

- `speculative_decoding`: drafts verified by the model itself in one forward pass; greedy, so the output
  is meant to be the runtime's plain output (the fidelity check says whether it is). Drafts come from
  n-grams of the context (prompt lookup) or from a cheaper build of the same GGUF (draft_model).
- `griffin`: context-conditioned FFN pruning, training-free (models/griffin.py).
- `hyper_griffin`: the same slicing, chosen before prefill by a hypernetwork trained here, in seconds,
  on calibration prompts (from the end of the workload, never the fidelity prompts), with GRIFFIN's
  top-k sets as targets. Its overlap with GRIFFIN's sets on held-out prompts is in the pass report.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext
from inferarena.passes.gguf import FTYPES, GGUFQuantize, GGUFQuantizeConfig
from inferarena.passes.torchao_quant import _link_or_copy


def _relink(artifact: Artifact, out_dir: Path) -> Path:
    """The artifact again under out_dir, hard-linked: same bytes, same file names."""
    if artifact.path.is_file():
        out = out_dir / "model" / artifact.path.name
        out.parent.mkdir(parents=True)
        _link_or_copy(str(artifact.path), str(out))
        return out
    out = out_dir / "model"
    shutil.copytree(artifact.path, out, copy_function=_link_or_copy)
    return out


def _marked(artifact: Artifact, path: Path, decoding: dict, report: dict | None = None) -> Artifact:
    meta = {**artifact.meta, "decoding": decoding}
    if report:
        meta["pass_report"] = {**artifact.meta.get("pass_report", {}), decoding["method"]: report}
    return Artifact(path, artifact.format, meta)


class SpeculativeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["prompt_lookup", "draft_model"] = Field(
        "prompt_lookup", description="Where drafts come from. prompt_lookup: the tokens that followed the last "
        "n-gram where it last occurred in the context (prompt or output so far). draft_model: a cheaper build of "
        "the same model (GGUF only), in `draft_type`.")
    num_tokens: int = Field(10, ge=1, le=64, description="Draft tokens proposed per step.")
    max_ngram: int = Field(2, ge=1, le=8, description="Longest n-gram matched against the context (prompt_lookup).")
    draft_type: Literal[tuple(FTYPES)] = Field("q4_0", description="llama.cpp weight type of the draft build (draft_model).")


class SpeculativeDecoding(Pass):
    name = "speculative_decoding"
    accepts = ("gguf", "hf_causal_lm", "ov_genai")
    produces = ("gguf", "hf_causal_lm", "ov_genai")
    Config = SpeculativeConfig

    @classmethod
    def output_format(cls, input_format: str) -> str:
        return input_format

    def run(self, artifact: Artifact, config: SpeculativeConfig, out_dir: Path, context: PassContext | None) -> Artifact:
        model = _relink(artifact, out_dir)
        if config.method == "prompt_lookup":
            return _marked(artifact, model, {"method": "prompt_lookup", "num_tokens": config.num_tokens,
                                             "max_ngram": config.max_ngram})
        if artifact.format != "gguf":
            raise ConfigError(f"a draft_model speculation needs a GGUF, not {artifact.format}",
                              "put gguf_quantize first, or use method prompt_lookup")
        (out_dir / "draft").mkdir()
        draft = GGUFQuantize().run(artifact, GGUFQuantizeConfig(type=config.draft_type), out_dir / "draft", context)
        (model.parent / "draft.gguf").hardlink_to(draft.path)  # next to the model: the cache moves the folder
        report = {"draft_type": draft.meta["precision"], "draft_mb": round(draft.path.stat().st_size / 1e6, 1),
                  "target_type": artifact.meta.get("precision")}
        return _marked(artifact, model, {"method": "draft_model", "num_tokens": config.num_tokens,
                                         "draft_file": "draft.gguf", "draft_type": draft.meta["precision"]}, report)


KEEP_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class GriffinConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: float = Field(0.5, gt=0, le=1, description="Share of each layer's FFN neurons kept for generation.")
    max_ppl_increase_pct: float | None = Field(
        None, gt=0, description="Perplexity budget: when set, the keep share is the smallest of `keep` and the "
        f"shares {', '.join(map(str, KEEP_GRID))} above it whose perplexity on calibration text (from the end of "
        "the workload's prompts, never the held-out text) rises at most this much over the unpruned model's.")


class Griffin(Pass):
    name = "griffin"
    accepts = ("hf_causal_lm",)
    produces = ("hf_causal_lm",)
    Config = GriffinConfig
    uses_data = True  # only a perplexity budget reads the context
    lossy = True

    def run(self, artifact: Artifact, config: GriffinConfig, out_dir: Path, context: PassContext | None) -> Artifact:
        if config.max_ppl_increase_pct is None:
            return _marked(artifact, _relink(artifact, out_dir), {"method": "griffin", "keep": config.keep})
        with _griffin_model(artifact, config.keep, context, "griffin with max_ppl_increase_pct") as g:
            report = g.calibrate_keep(_ppl_texts(context), _grid(config.keep), config.max_ppl_increase_pct)
        return _marked(artifact, _relink(artifact, out_dir), {"method": "griffin", "keep": report["keep"]}, report)


def _grid(keep: float) -> list[float]:
    return sorted({keep, *(k for k in KEEP_GRID if k > keep)})


def _ppl_texts(context: PassContext) -> list[list[int]]:
    """Up to four calibration texts about as long as the held-out perplexity text, each a run of the
    workload's calibration prompts (from its end, never the fidelity prompts or the held-out text)."""
    available = context.calibration_available
    length = len(getattr(context.workload, "perplexity_text", ())) or 512
    texts, text = [], []
    for batch in context.calibration_batches(available):
        text += np.asarray(batch["input_ids"]).reshape(-1).tolist()
        if len(text) >= length:
            texts.append(text[:length])
            text = []
            if len(texts) == 4:
                break
    if not texts and len(text) > 8:
        texts = [text]
    if not texts:
        raise ConfigError("the workload's calibration prompts are too short to calibrate a perplexity budget",
                          "raise workload.num_samples")
    return texts


@contextlib.contextmanager
def _griffin_model(artifact: Artifact, keep: float, context: PassContext | None, what: str):
    """GRIFFIN installed in the model as the runtime will run it: its torchao recipe applied, so the
    targets and the perplexity budget cover the combination."""
    import torch
    from transformers import AutoModelForCausalLM

    from inferarena.frameworks.torchao import apply_recipe, read_recipe
    from inferarena.models import griffin

    if context is None:
        raise ConfigError(f"{what} needs calibration prompts", "run it inside `inferarena run`")
    previous = torch.get_num_threads()
    torch.set_num_threads(context.threads)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(artifact.path), dtype=torch.float32, use_safetensors=True,
                                                     trust_remote_code=False).eval()
        if recipe := read_recipe(artifact.path):
            apply_recipe(model, recipe)
        yield griffin.Griffin(model, keep)
    finally:
        torch.set_num_threads(previous)


class HyperGriffinConfig(GriffinConfig):
    hidden: int = Field(256, ge=8, description="Width of the hypernetwork's hidden layer.")
    calibration_prompts: int | None = Field(None, ge=8, description="Workload prompts used to train and check it "
                                            "(from the end of the workload, never the fidelity prompts). "
                                            "Default: up to 128, as many as the workload has beyond those.")
    holdout_fraction: float = Field(0.25, gt=0, lt=1, description="Share of them held out to report the "
                                    "overlap with GRIFFIN's sets.")
    steps: int = Field(300, ge=1, description="Full-batch Adam steps.")
    seed: int = Field(0, description="Seed of the network's initial weights.")


class HyperGriffin(Pass):
    name = "hyper_griffin"
    version = "2"  # the network in safetensors
    accepts = ("hf_causal_lm",)
    produces = ("hf_causal_lm",)
    Config = HyperGriffinConfig
    uses_data = True
    lossy = True

    def run(self, artifact: Artifact, config: HyperGriffinConfig, out_dir: Path,
            context: PassContext | None) -> Artifact:
        import torch

        from inferarena.models import griffin

        started = time.perf_counter()
        with _griffin_model(artifact, config.keep, context, "hyper_griffin") as g:
            available = context.calibration_available
            count = config.calibration_prompts or max(8, min(128, available))
            batches = context.calibration_batches(count)
            model = g.model
            features, scores = [], []
            with torch.inference_mode():
                for batch in batches:
                    ids = torch.as_tensor(np.asarray(batch["input_ids"], dtype=np.int64)).reshape(1, -1)
                    g.record()
                    model(input_ids=ids, use_cache=False)
                    scores.append(g.recorded_scores())
                    features.append(griffin.prompt_summary(model, ids)[0])
            x, target_scores = torch.stack(features).float(), torch.stack(scores)
            layers, width = target_scores.shape[1:]
            targets = torch.zeros_like(target_scores)
            targets.scatter_(2, torch.topk(target_scores, g.k, dim=-1).indices, 1.0)
            split = max(1, min(len(x) - 1, round(len(x) * (1 - config.holdout_fraction))))
            torch.manual_seed(config.seed)
            net = griffin.hyper_network(x.shape[1], layers, width, config.hidden)
            mean, std = x[:split].mean(0), x[:split].std(0).clamp_min(1e-6)
            first = net[0]  # trained on standardised inputs; the standardisation is folded into it below
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            xs = (x - mean) / std
            for _ in range(config.steps):
                optimizer.zero_grad()
                loss = loss_fn(net(xs[:split]), targets[:split].reshape(split, -1))
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                first.bias -= (first.weight / std) @ mean
                first.weight /= std
                predicted = net(x[split:]).view(-1, layers, width)
            overlap = _overlap(torch.topk(predicted, g.k, dim=-1).indices, torch.topk(target_scores[split:], g.k, dim=-1).indices)
            static = _overlap(torch.topk(target_scores[:split].mean(0, keepdim=True).expand(len(x) - split, -1, -1),
                                         g.k, dim=-1).indices, torch.topk(target_scores[split:], g.k, dim=-1).indices)
            keep, budget = config.keep, None
            if config.max_ppl_increase_pct is not None:
                budget = g.calibrate_keep(_ppl_texts(context), _grid(config.keep), config.max_ppl_increase_pct,
                                          hyper=net.eval())
                keep = budget["keep"]
        out = _relink(artifact, out_dir)
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / griffin.HYPER_FILE))
        report = {"fit_prompts": split, "holdout_prompts": len(x) - split, "final_bce": round(float(loss.detach()), 5),
                  "overlap_with_griffin_holdout": round(overlap, 4),
                  "overlap_of_one_static_set_holdout": round(static, 4),
                  "train_s": round(time.perf_counter() - started, 2),
                  "controller_params": sum(p.numel() for p in net.parameters()), **(budget or {})}
        return _marked(artifact, out, {"method": "hyper_griffin", "keep": keep, "hidden": config.hidden}, report)


def _overlap(a, b) -> float:
    """Mean share of GRIFFIN's kept neurons that the other set keeps too, over prompts and layers."""
    hits = [len(set(x.tolist()) & set(y.tolist())) / len(y) for pa, pb in zip(a, b) for x, y in zip(pa, pb)]
    return float(np.mean(hits))
