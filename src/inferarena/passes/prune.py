"""Structured pruning of BERT-style encoders after training, without fine-tuning (FLAP).

Whole attention heads and FFN neurons are removed, so every runtime runs smaller dense matmuls rather
than sparse ones. Importance follows FLAP (An et al., AAAI 2024, github.com/CASIA-IVA-Lab/FLAP): how
much a channel entering an output projection fluctuates over the calibration set, times the squared
norm of the weight column that reads it. A channel that barely fluctuates carries mostly its mean, and
that mean is folded into the projection's bias (bias compensation), which is what lets FLAP skip
fine-tuning.

HF BERT has one `intermediate_size`, so every layer keeps the same FFN width and FFN-only output is a
plain BERT folder. transformers 5 removed `pruned_heads`, so a BERT with fewer heads no longer loads
as a plain BERT: head-pruned folders carry a small subclass (`auto_map`) and load only with
`trust_remote_code=True`. The pass reloads its output with the project's own loader and refuses
(ConfigError) to hand out a folder that loader cannot read.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError, ModelError
from inferarena.models.hf_encoder import encoder_artifact
from inferarena.passes.base import Pass, PassContext

WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".gguf"}
MODELING_FILE = "modeling_pruned_bert.py"
MODELING_SOURCE = Path(__file__).resolve().parent.parent / "models" / "pruned_bert.py"  # copied, not imported


class StructuredPruneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratio: float = Field(
        0.2, gt=0, lt=1, description="Share of attention heads and of FFN neurons removed (FFN width rounds to a "
        "multiple of 32 on wide layers, for full vector lanes). Search space: 0.1 .. 0.5.",
        json_schema_extra={"space": [0.1, 0.2, 0.3, 0.4, 0.5]})
    targets: Literal["ffn", "heads", "heads+ffn"] = Field(
        "ffn", description="What is removed. Head-pruned folders load through inferarena's PrunedBertModel "
        "(transformers 5 dropped BERT's pruned_heads; other tools need trust_remote_code); FFN-only output "
        "stays a plain BERT. "
        "Search space: ffn, heads, heads+ffn.", json_schema_extra={"space": ["ffn", "heads", "heads+ffn"]})
    importance: Literal["flap", "magnitude"] = Field(
        "flap", description="flap: activation variance on the calibration set x squared weight-column norm; "
        "magnitude: weight-column norm only. Search space: flap, magnitude.",
        json_schema_extra={"space": ["flap", "magnitude"]})
    bias_compensation: bool = Field(
        True, description="Fold each removed channel's mean activation into the output projection's bias, "
        "so the expected output is kept.")
    calibration_samples: int = Field(32, ge=1, description="Workload samples whose activations rank the channels.")
    uniform: bool = Field(
        True, description="Remove as many heads in every layer; False ranks heads across layers (FLAP's "
        "standardized scores). FFN width is always uniform: HF BERT has one intermediate_size.")


@dataclass
class _Stats:
    """Per-channel mean and variance of an output projection's input over the calibration tokens."""

    mean: Any  # torch.Tensor, float64
    var: Any


class StructuredPrune(Pass):
    """Remove heads and FFN neurons by FLAP importance; the output is an `hf_encoder` folder again.

    Example: `StructuredPrune().run(artifact, StructuredPruneConfig(ratio=0.3), out_dir, context)`.
    """

    lossy = True

    name = "prune_structured"
    accepts = ("hf_encoder",)
    produces = ("hf_encoder",)
    Config = StructuredPruneConfig
    uses_data = True

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        import torch

        from inferarena.models.hf_encoder import load_embedding_module

        if context is None:
            raise ConfigError("prune_structured needs calibration data", "run it inside `inferarena run`")
        batches = context.calibration_batches(config.calibration_samples)
        uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
        previous = torch.get_num_threads()
        torch.set_num_threads(context.threads)  # more threads than cores makes torch's small matmuls crawl
        try:
            module = load_embedding_module(artifact.path, uses_tt)
            report = prune_encoder(module, batches, config)
            save_pruned(module.encoder, artifact.path, out_dir)
            _check_reload(module, out_dir, uses_tt, batches[:4], heads_pruned=report["heads_removed"] > 0)
        finally:
            torch.set_num_threads(previous)
        fresh = encoder_artifact(out_dir, artifact.meta.get("name", artifact.path.name))
        reports = {**artifact.meta.get("pass_report", {}), self.name: report}
        return Artifact(fresh.path, fresh.format, {**artifact.meta, **fresh.meta, "pass_report": reports})


def prune_encoder(module, batches: list[dict], config: StructuredPruneConfig) -> dict[str, Any]:
    """Prune the embedding module's encoder in place; return what was removed.

    Statistics come from one pass over the unpruned model, as in FLAP.
    """
    import torch

    layers = encoder_layers(module.encoder)
    if "heads" in config.targets and module.encoder.config.model_type != "bert":
        raise ConfigError(f"prune_structured removes heads from BERT only, not {module.encoder.config.model_type}",
                          "use targets=ffn")
    before = sum(p.numel() for p in module.encoder.parameters())
    ffn_before = layers[0].intermediate.dense.out_features
    needed = config.importance == "flap" or config.bias_compensation
    attn_stats, ffn_stats = _collect(module, layers, batches) if needed else ([None] * len(layers),) * 2
    with torch.no_grad():
        heads_removed = _prune_heads(layers, attn_stats, config) if "heads" in config.targets else 0
        if "ffn" in config.targets:
            _prune_ffn(layers, ffn_stats, config)
    return {
        "ratio": config.ratio, "targets": config.targets, "importance": config.importance,
        "bias_compensation": config.bias_compensation, "uniform": config.uniform,
        "heads_kept": [layer.attention.self.num_attention_heads for layer in layers], "heads_removed": heads_removed,
        "intermediate_size_before": ffn_before, "intermediate_size_after": layers[0].intermediate.dense.out_features,
        "parameters_before": before, "parameters_after": sum(p.numel() for p in module.encoder.parameters()),
        "calibration_samples": len(batches),
    }


def save_pruned(encoder, source: Path, out_dir: Path) -> None:
    """Write config, weights and every non-weight file of `source` (tokenizer, pooling config, ...)."""
    config = encoder.config
    layers = encoder_layers(encoder)
    config.intermediate_size = layers[0].intermediate.dense.out_features
    heads = [layer.attention.self.num_attention_heads for layer in layers]
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(h != config.num_attention_heads for h in heads):
        config.heads_per_layer = heads
        config.auto_map = {"AutoModel": f"{Path(MODELING_FILE).stem}.PrunedBertModel"}
        (out_dir / MODELING_FILE).write_text(MODELING_SOURCE.read_text())
    encoder.save_pretrained(out_dir)
    for file in source.rglob("*"):
        relative = file.relative_to(source)
        weights = file.suffix in WEIGHT_SUFFIXES or file.name.endswith(".index.json")  # a shard index too
        if file.is_file() and not weights and not (out_dir / relative).exists():
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, out_dir / relative)


def encoder_layers(encoder) -> list:
    """A BERT-style encoder's layers (prune_structured and layer_drop both edit them); a clear error otherwise."""
    layers = list(getattr(getattr(encoder, "encoder", None), "layer", []))
    parts = ("attention.self.query", "attention.output.dense", "intermediate.dense", "output.dense")
    if not layers or not all(_has(layer, part) for layer in layers for part in parts):
        raise ConfigError(f"prune_structured supports BERT-style encoders, not {type(encoder).__name__}",
                          "drop the pass for this model")
    return layers


def _has(module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _collect(module, layers: list, batches: list[dict]) -> tuple[list[_Stats], list[_Stats]]:
    """Mean and variance of each output projection's input, over real (unpadded) tokens only."""
    import torch

    state: dict[str, Any] = {}
    sums: dict[tuple[int, str], list] = {}

    def hook(key):
        def record(_, args):
            x = args[0][state["mask"]].double()  # (tokens, channels)
            acc = sums.setdefault(key, [0, 0.0, 0.0])
            acc[0] += x.shape[0]
            acc[1] = acc[1] + x.sum(0)
            acc[2] = acc[2] + (x * x).sum(0)
        return record

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.attention.output.dense.register_forward_pre_hook(hook((i, "attn"))))
        handles.append(layer.output.dense.register_forward_pre_hook(hook((i, "ffn"))))
    try:
        with torch.no_grad():
            for batch in batches:
                tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
                state["mask"] = tensors["attention_mask"].bool()
                module(**tensors)
    finally:
        for handle in handles:
            handle.remove()

    def stats(key) -> _Stats:
        n, s, sq = sums[key]
        mean = s / n
        return _Stats(mean, (sq - n * mean * mean) / max(n - 1, 1))

    return [stats((i, "attn")) for i in range(len(layers))], [stats((i, "ffn")) for i in range(len(layers))]


def _scores(linear, stats: _Stats | None, importance: str):
    """Per input channel of `linear`: FLAP's fluctuation x squared column norm, or the column norm alone."""
    norms = linear.weight.detach().double().pow(2).sum(0)
    return stats.var * norms if importance == "flap" else norms.sqrt()


def _prune_heads(layers: list, stats: list[_Stats | None], config: StructuredPruneConfig) -> int:
    import torch

    size = layers[0].attention.self.attention_head_size
    counts = [layer.attention.self.num_attention_heads for layer in layers]
    channel = [_scores(layer.attention.output.dense, s, config.importance) for layer, s in zip(layers, stats)]
    if config.uniform:
        # As FLAP's code does: a head scores the sum of its channels' squared FLAP scores (or plain norms).
        power = 2 if config.importance == "flap" else 1
        scores = [c.pow(power).view(-1, size).sum(1) for c in channel]
        removed = [min(n - 1, round(config.ratio * n)) for n in counts]
    else:
        # FLAP's adaptive structure: standardize within each layer, then rank heads across layers.
        scores = [((c - c.mean()) / c.std()).view(-1, size).mean(1) for c in channel]
        removed = _global_removal(scores, round(config.ratio * sum(counts)))
    for layer, score, drop, s in zip(layers, scores, removed, stats):
        if drop == 0:
            continue
        keep = torch.sort(torch.argsort(score, descending=True)[: len(score) - drop]).values
        index = (keep[:, None] * size + torch.arange(size)).flatten()
        attention = layer.attention.self
        for name in ("query", "key", "value"):
            setattr(attention, name, _keep_outputs(getattr(attention, name), index))
        attention.num_attention_heads, attention.all_head_size = len(keep), len(index)
        layer.attention.output.dense = _keep_inputs(layer.attention.output.dense, index, s, config.bias_compensation)
    return sum(removed)


def _global_removal(scores: list, total: int) -> list[int]:
    """How many heads each layer loses when the `total` lowest-scored heads go, keeping one per layer."""
    import torch

    flat = torch.cat(scores)
    layer_of = torch.cat([torch.full((len(s),), i) for i, s in enumerate(scores)])
    removed = [0] * len(scores)
    for index in torch.argsort(flat).tolist():
        if total == 0:
            break
        i = int(layer_of[index])
        if removed[i] < len(scores[i]) - 1:
            removed[i] += 1
            total -= 1
    return removed


def _prune_ffn(layers: list, stats: list[_Stats | None], config: StructuredPruneConfig) -> None:
    import torch

    width = layers[0].intermediate.dense.out_features
    step = 32 if width >= 512 else 1
    kept = max(step, round(width * (1 - config.ratio) / step) * step)
    for layer, s in zip(layers, stats):
        score = _scores(layer.output.dense, s, config.importance)
        keep = torch.sort(torch.argsort(score, descending=True)[:kept]).values
        layer.intermediate.dense = _keep_outputs(layer.intermediate.dense, keep)
        layer.output.dense = _keep_inputs(layer.output.dense, keep, s, config.bias_compensation)


def _keep_outputs(linear, keep):
    import torch

    new = torch.nn.Linear(linear.in_features, len(keep), bias=linear.bias is not None, dtype=linear.weight.dtype)
    new.weight.copy_(linear.weight[keep])
    if linear.bias is not None:
        new.bias.copy_(linear.bias[keep])
    return new


def _keep_inputs(linear, keep, stats: _Stats | None, compensate: bool):
    """Keep input channels `keep`; with compensation, the removed channels' mean output moves into the bias."""
    import torch

    new = torch.nn.Linear(len(keep), linear.out_features, bias=True, dtype=linear.weight.dtype)
    new.weight.copy_(linear.weight[:, keep])
    bias = linear.bias.detach().clone() if linear.bias is not None else torch.zeros(linear.out_features)
    if compensate and stats is not None:
        removed = torch.ones(linear.in_features, dtype=torch.bool)
        removed[keep] = False
        bias += (linear.weight[:, removed].double() @ stats.mean[removed]).to(bias.dtype)
    new.bias.copy_(bias)
    return new


def _check_reload(module, out_dir: Path, uses_tt: bool, batches: list[dict], heads_pruned: bool) -> None:
    """The written folder, read back by the project's loader, must compute what the pruned module computes."""
    import torch

    from inferarena.models.hf_encoder import load_embedding_module

    try:
        reloaded = load_embedding_module(out_dir, uses_tt)
        with torch.no_grad():
            gap = max(float((module(**t) - reloaded(**t)).abs().max())
                      for t in ({k: torch.from_numpy(v) for k, v in b.items()} for b in batches))
    except Exception as exc:  # noqa: BLE001 - any load failure is reported below
        gap, error = math.inf, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    else:
        error = f"outputs differ by {gap:.2e}"
    if gap <= 1e-5:
        return
    if heads_pruned:
        raise ConfigError(f"the head-pruned folder does not load as a plain BERT ({error}); transformers 5 "
                          "dropped pruned_heads, so it needs a loader with trust_remote_code",
                          "use targets=ffn, or load hf_encoder folders with trust_remote_code")
    raise ModelError(f"the pruned folder in {out_dir} does not reload as pruned ({error})",
                     "report this; meanwhile drop prune_structured")
