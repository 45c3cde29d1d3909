"""Decoding passes for causal LMs: they change how tokens are produced, not the weights on disk.

Each writes the model again (hard links, so no bytes are copied) with a `decoding` entry in its meta
that the generative runtimes read (runtimes/transformers_lm.py, runtimes/llama_cpp.py); a runtime that
cannot honour the method refuses the artifact, so a variant never runs plain under a method's name.
Conversions keep the entry (passes.apply): a GGUF marked for prompt lookup is still marked after
gguf_to_hf.

- `speculative_decoding`: drafts verified by the model itself in one forward pass; greedy, so the output
  is meant to be the runtime's plain output (the fidelity check says whether it is). Drafts come from
  n-grams of the context (prompt lookup) or, with draft_model, from a cheaper build of the same GGUF
  (`draft_type`) or from another GGUF that shares its tokenizer (`draft`: a bundled model or a path,
  e.g. Qwen2.5-Coder-0.5B drafting for the 1.5B; refused unless both files hold the same token strings).
- `griffin`: context-conditioned FFN pruning, training-free (adaptive/griffin.py).
- `hyper_griffin`: the same slicing, chosen before prefill by a hypernetwork trained here, in seconds,
  on calibration prompts (from the end of the workload, never the fidelity prompts), with GRIFFIN's
  top-k sets as targets. Its overlap with GRIFFIN's sets on held-out prompts is in the pass report.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, ModelError
from inferarena.fsutil import link_or_copy
from inferarena.passes.base import Pass, PassContext
from inferarena.passes.gguf import FTYPES, GGUFQuantize, GGUFQuantizeConfig


def _relink(artifact: Artifact, out_dir: Path) -> Path:
    """The artifact again under out_dir, hard-linked: same bytes, same file names."""
    if artifact.path.is_file():
        out = out_dir / "model" / artifact.path.name
        out.parent.mkdir(parents=True)
        link_or_copy(str(artifact.path), str(out))
        return out
    out = out_dir / "model"
    shutil.copytree(artifact.path, out, copy_function=link_or_copy)
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
        "n-gram where it last occurred in the context (prompt or output so far). draft_model: a second GGUF "
        "drafts greedily: another model (`draft`) or a cheaper build of the same one (`draft_type`).")
    num_tokens: int = Field(10, ge=1, le=64, description="Draft tokens proposed per step. Search space: 2, 4, 6, 8, "
                            "10 (`inferarena search` does not search pass options: bench/draft_model.py measures "
                            "them for draft_model).", json_schema_extra={"space": [2, 4, 6, 8, 10]})
    max_ngram: int = Field(2, ge=1, le=8, description="Longest n-gram matched against the context (prompt_lookup).")
    draft_type: Literal[tuple(FTYPES)] = Field("q4_0", description="llama.cpp weight type of the draft build "
                                               "(draft_model without `draft`).")
    draft: str | None = Field(None, description="draft_model: the model that drafts, instead of a quantized copy "
                              "of the target: a bundled model (qwen-coder-0.5b) or a .gguf path, resolved when the "
                              "variant is built. It must hold the target's token strings (checked; refused if not). "
                              "Its sha256 is part of the build's cache key.")

    @model_validator(mode="after")
    def _draft_needs_draft_model(self):
        if self.draft is not None and self.method != "draft_model":
            raise ValueError(f"`draft` names a draft model, which method {self.method} does not use; "
                             "set method: draft_model, or drop `draft`")
        return self


@dataclass(frozen=True)
class _WithDraft(Artifact):
    """The target, keyed in the pass cache by its bytes and the named draft's: a swapped draft builds anew."""

    draft_sha256: str = ""

    def content_hash(self) -> str:
        return hashlib.sha256(f"{super().content_hash()}|draft {self.draft_sha256}".encode()).hexdigest()[:16]


class SpeculativeDecoding(Pass):
    name = "speculative_decoding"
    accepts = ("gguf", "hf_causal_lm", "ov_genai")
    produces = ("gguf", "hf_causal_lm", "ov_genai")
    Config = SpeculativeConfig

    def __init__(self) -> None:
        self._resolved: dict[str, Artifact] = {}  # drafts named by `draft`, resolved once per build

    @classmethod
    def output_format(cls, input_format: str) -> str:
        return input_format

    def cached_run(self, artifact: Artifact, config: SpeculativeConfig, cache_dir: Path,
                   context: PassContext | None = None) -> Artifact:
        if config.method == "draft_model" and config.draft is not None:
            artifact = _WithDraft(artifact.path, artifact.format, artifact.meta, artifact.lineage,
                                  draft_sha256=_sha256(self._draft_source(config.draft).path))
        return super().cached_run(artifact, config, cache_dir, context)

    def run(self, artifact: Artifact, config: SpeculativeConfig, out_dir: Path, context: PassContext | None) -> Artifact:
        if config.method == "prompt_lookup":
            return _marked(artifact, _relink(artifact, out_dir),
                           {"method": "prompt_lookup", "num_tokens": config.num_tokens, "max_ngram": config.max_ngram})
        if artifact.format != "gguf":
            raise ConfigError(f"a draft_model speculation needs a GGUF, not {artifact.format}",
                              "put gguf_quantize first, or use method prompt_lookup")
        if config.draft is not None:
            return self._named_draft(artifact, config, out_dir)
        model = _relink(artifact, out_dir)
        (out_dir / "draft").mkdir()
        draft = GGUFQuantize().run(artifact, GGUFQuantizeConfig(type=config.draft_type), out_dir / "draft", context)
        (model.parent / "draft.gguf").hardlink_to(draft.path)  # next to the model: the cache moves the folder
        report = {"draft_type": draft.meta["precision"], "draft_mb": round(draft.path.stat().st_size / 1e6, 1),
                  "target_type": artifact.meta.get("precision")}
        return _marked(artifact, model, {"method": "draft_model", "num_tokens": config.num_tokens,
                                         "draft_file": "draft.gguf", "draft_type": draft.meta["precision"]}, report)

    def _named_draft(self, artifact: Artifact, config: SpeculativeConfig, out_dir: Path) -> Artifact:
        """Another GGUF drafts: refused unless it holds the target's token strings, id for id (a draft's ids
        mean nothing to a target with another vocabulary), then linked in beside the target."""
        draft = self._draft_source(config.draft)
        target_vocab, draft_vocab = gguf_vocab(artifact.path), gguf_vocab(draft.path)
        name = draft.meta.get("name") or draft.path.stem
        if (target_vocab["tokens"], target_vocab["sha256"]) != (draft_vocab["tokens"], draft_vocab["sha256"]):
            raise ConfigError(
                f"draft {config.draft!r} ({name}) does not share the target's tokenizer: "
                f"{_vocab_words(draft_vocab)} against the target's {_vocab_words(target_vocab)}",
                "name a draft of the target's model family, converted with the same tokenizer (qwen-coder-0.5b "
                "drafts for qwen-coder-1.5b), or use method prompt_lookup")
        model = _relink(artifact, out_dir)
        link_or_copy(str(draft.path), str(model.parent / "draft.gguf"))  # next to the model: the cache moves it
        sha = _sha256(draft.path)
        report = {"draft": config.draft, "draft_name": name, "draft_type": draft.meta.get("precision"),
                  "draft_mb": round(draft.path.stat().st_size / 1e6, 1), "draft_sha256": sha[:16],
                  "target_type": artifact.meta.get("precision"),
                  "vocab_check": {"same": True, "tokens": target_vocab["tokens"], "sha256": target_vocab["sha256"]}}
        return _marked(artifact, model, {"method": "draft_model", "num_tokens": config.num_tokens,
                                         "draft_file": "draft.gguf", "draft_type": draft.meta.get("precision"),
                                         "draft": name}, report)

    def _draft_source(self, spec: str) -> Artifact:
        """The named draft, resolved as --model resolves a model (once per build: the key, then the run); it
        must be a GGUF, since llama.cpp drafts."""
        resolved = self._resolved
        if spec not in resolved:
            from inferarena import models

            draft = models.resolve(spec)
            if draft.format != "gguf":
                raise ConfigError(f"the draft {spec!r} is a {draft.format} model, not a GGUF",
                                  "name a bundled GGUF model (qwen-coder-0.5b) or a .gguf file")
            resolved[spec] = draft
        return resolved[spec]


_SHA256: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, once per process


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


# GGUF metadata value types (gguf's GGUFValueType) and the byte sizes of the fixed-size ones.
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_vocab(path: Path) -> dict:
    """A GGUF's vocabulary, cheaply: its `tokenizer.ggml.tokens` count and the sha256 of the token strings in
    id order (the array's bytes as stored: each string length-prefixed), plus `tokenizer.ggml.model`. Read
    from the metadata alone, up to the token list; gguf's GGUFReader takes seconds to decode a 150k vocabulary."""
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read_vocab(data)
    except (ValueError, OSError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"the vocabulary of {path} cannot be read ({exc})",
                         "point at a GGUF model file converted by llama.cpp") from None


def _read_vocab(data) -> dict:
    def u32(at: int) -> int:
        return struct.unpack_from("<I", data, at)[0]

    def u64(at: int) -> int:
        return struct.unpack_from("<Q", data, at)[0]

    def skip(kind: int, at: int) -> int:
        if kind == _GGUF_STRING:
            return at + 8 + u64(at)
        if kind == _GGUF_ARRAY:
            item, count, at = u32(at), u64(at + 4), at + 12
            if item in _GGUF_SIZES:
                return at + count * _GGUF_SIZES[item]
            for _ in range(count):
                at = skip(item, at)
            return at
        if kind not in _GGUF_SIZES:
            raise ValueError(f"unknown GGUF value type {kind}")
        return at + _GGUF_SIZES[kind]

    if data[:4] != b"GGUF" or u32(4) not in (2, 3):
        raise ValueError("no GGUF v2/v3 header")
    found: dict = {}
    at, fields = 24, u64(16)
    for _ in range(fields):
        size = u64(at)
        key, at = bytes(data[at + 8: at + 8 + size]).decode(), at + 8 + size
        kind, at = u32(at), at + 4
        end = skip(kind, at)
        if key == "tokenizer.ggml.tokens" and kind == _GGUF_ARRAY and u32(at) == _GGUF_STRING:
            found["tokens"] = u64(at + 4)
            found["sha256"] = hashlib.sha256(data[at + 12: end]).hexdigest()[:16]
        elif key == "tokenizer.ggml.model" and kind == _GGUF_STRING:
            found["model"] = bytes(data[at + 8: end]).decode()
        if len(found) == 3:
            break
        at = end
    if "tokens" not in found:
        raise ValueError("no tokenizer.ggml.tokens in its metadata")
    return {"tokens": found["tokens"], "sha256": found["sha256"], "model": found.get("model")}


def _vocab_words(vocab: dict) -> str:
    return f"{vocab['tokens']:,} {vocab.get('model') or ''} tokens (sha256 {vocab['sha256']})".replace("  ", " ")


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

    from inferarena.adaptive import griffin
    from inferarena.frameworks.torchao import apply_recipe, read_recipe

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
                                    "overlap with GRIFFIN's sets and the perplexity on prompts it never saw.")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="Share of the rest kept out of the fit to "
                                       "stop it early: training stops when their loss has not improved for "
                                       "`patience` checks, and the best weights seen are kept.")
    steps: int = Field(300, ge=1, description="Full-batch AdamW steps, at most.")
    check_every: int = Field(10, ge=1, description="Steps between two checks of the validation loss.")
    patience: int = Field(5, ge=1, description="Checks without a better validation loss before stopping.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's decoupled weight decay.")
    ppl_prompts: int = Field(16, ge=1, description="Prompts of each split whose perplexity is reported (fit and "
                             "held out), each scored as generation runs: its first half picks the neurons.")
    seed: int = Field(0, description="Seed of the network's initial weights.")


class HyperGriffin(Pass):
    name = "hyper_griffin"
    version = "3"  # early stopping on a validation split, weight decay; perplexity on fit and held-out prompts
    accepts = ("hf_causal_lm",)
    produces = ("hf_causal_lm",)
    Config = HyperGriffinConfig
    uses_data = True
    lossy = True

    def run(self, artifact: Artifact, config: HyperGriffinConfig, out_dir: Path,
            context: PassContext | None) -> Artifact:
        import torch

        from inferarena.adaptive import griffin

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
            split = max(2, min(len(x) - 1, round(len(x) * (1 - config.holdout_fraction))))
            fit = max(1, min(split - 1, round(split * (1 - config.validation_fraction))))
            torch.manual_seed(config.seed)
            net = griffin.hyper_network(x.shape[1], layers, width, config.hidden)
            mean, std = x[:fit].mean(0), x[:fit].std(0).clamp_min(1e-6)
            first = net[0]  # trained on standardised inputs; the standardisation is folded into it below
            xs, flat = (x - mean) / std, targets.reshape(len(x), -1)
            training = _fit_early_stopped(net, xs[:fit], flat[:fit], xs[fit:split], flat[fit:split], config)
            with torch.no_grad():
                first.bias -= (first.weight / std) @ mean
                first.weight /= std
                predicted = net(x[split:]).view(-1, layers, width)
            overlap = _overlap(torch.topk(predicted, g.k, dim=-1).indices, torch.topk(target_scores[split:], g.k, dim=-1).indices)
            static = _overlap(torch.topk(target_scores[:split].mean(0, keepdim=True).expand(len(x) - split, -1, -1),
                                         g.k, dim=-1).indices, torch.topk(target_scores[split:], g.k, dim=-1).indices)
            keep, budget = config.keep, None
            net.eval()
            if config.max_ppl_increase_pct is not None:
                budget = g.calibrate_keep(_ppl_texts(context), _grid(config.keep), config.max_ppl_increase_pct,
                                          hyper=net)
                keep = budget["keep"]
            g.set_keep(keep)
            prompts = [np.asarray(b["input_ids"]).reshape(-1).tolist() for b in batches]
            perplexity = {
                "fit_ppl_increase_pct": _ppl_increase(g, prompts[:fit][: config.ppl_prompts], net),
                "holdout_ppl_increase_pct": _ppl_increase(g, prompts[split:][: config.ppl_prompts], net),
                "griffin_holdout_ppl_increase_pct": _ppl_increase(g, prompts[split:][: config.ppl_prompts], None),
            }
            g.controller_s.clear()
        out = _relink(artifact, out_dir)
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / griffin.HYPER_FILE))
        report = {"fit_prompts": fit, "validation_prompts": split - fit, "holdout_prompts": len(x) - split,
                  **training, **perplexity, "ppl_keep": keep,
                  "overlap_with_griffin_holdout": round(overlap, 4),
                  "overlap_of_one_static_set_holdout": round(static, 4),
                  "train_s": round(time.perf_counter() - started, 2),
                  "controller_params": sum(p.numel() for p in net.parameters()), **(budget or {})}
        return _marked(artifact, out, {"method": "hyper_griffin", "keep": keep, "hidden": config.hidden}, report)


def _fit_early_stopped(net, x, y, x_val, y_val, config: HyperGriffinConfig) -> dict:
    """Full-batch AdamW on (x, y), the validation loss checked every `check_every` steps; stops after
    `patience` checks without a better one and keeps the best weights. Returns what the fit did."""
    import copy

    import torch

    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, best_step, waited, step, train = float("inf"), copy.deepcopy(net.state_dict()), 0, 0, 0, float("nan")
    for step in range(1, config.steps + 1):
        net.train()
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        if step % config.check_every and step != config.steps:
            continue
        net.eval()
        with torch.no_grad():
            validation = float(loss_fn(net(x_val), y_val))
        if validation < best - 1e-6:
            best, best_state, best_step, waited, train = validation, copy.deepcopy(net.state_dict()), step, 0, float(loss)
        else:
            waited += 1
            if waited >= config.patience:
                break
    net.load_state_dict(best_state)
    return {"train_bce": round(train, 5), "validation_bce": round(best, 5), "best_step": best_step,
            "stopped_at_step": step, "early_stopped": step < config.steps}


def _ppl_increase(g, prompts: list[list[int]], hyper) -> float | None:
    """Perplexity on `prompts` with the neurons chosen per prompt (by `hyper`, or GRIFFIN's own statistic
    when None) against the full model on the same tokens, as a % increase; each scored as `split_logprobs`."""
    import torch

    prompts = [p for p in prompts if len(p) >= 4]
    if not prompts:
        return None
    full, sliced = [], []
    for tokens in prompts:
        g.full()
        with torch.inference_mode():
            logits = g.model(input_ids=torch.tensor([tokens])).logits[0, :-1].float()
            full.append(torch.log_softmax(logits, -1)[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])]
                        .double().numpy())
        sliced.append(g.split_logprobs(tokens, hyper))
    reference = float(np.exp(-np.concatenate(full).mean()))
    return round(100.0 * (float(np.exp(-np.concatenate(sliced).mean())) / reference - 1), 2)


def _overlap(a, b) -> float:
    """Mean share of GRIFFIN's kept neurons that the other set keeps too, over prompts and layers."""
    hits = [len(set(x.tolist()) & set(y.tolist())) / len(y) for pa, pb in zip(a, b) for x, y in zip(pa, pb)]
    return float(np.mean(hits))
