"""The typed run configuration. It validates on load, is stored with every run, and round-trips YAML.

Example:
    >>> cfg = RunConfig(runtimes=[RuntimeSpec(name="onnxruntime")], quick=True)
    >>> RunConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    True
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inferarena import registry
from inferarena.errors import ConfigError


def digest(data: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The short key every stored config is found by (a run's config, an agents run's decisive settings, a
    checkpoint's parts): sha256 of the JSON with sorted keys, 16 hex digits. `default` turns values JSON lacks
    (numpy arrays) into what they save as."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=default).encode()).hexdigest()[:16]


class ShapeStrategy(str, Enum):
    """How variable-length inputs become tensors; part of each variant."""

    fixed = "fixed"  # pad every batch to workload.max_length
    dynamic = "dynamic"  # pad each batch to its own longest sample
    bucketed = "bucketed"  # pad to the next of a few lengths taken from the workload's length distribution


def _registered(name: str, axis: dict[str, str], kind: str) -> str:
    if name not in axis:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(axis)}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuntimeSpec(_Strict):
    name: str = Field(description="Runtime name; `inferarena runtimes` lists them.")
    precisions: list[str] | None = Field(
        None, description="Precisions to measure; default: every one the runtime supports on this CPU; [] for "
        "none (only the pipelines run on it)."
    )
    knobs: dict[str, Any] = Field(
        default_factory=dict, description="Runtime knobs (threads, hints...), validated by the runtime."
    )

    _known = field_validator("name")(lambda cls, name: _registered(name, registry.RUNTIMES, "runtime"))


class PassSpec(_Strict):
    name: str = Field(description="Pass name, e.g. ort_optimize, ort_quantize.")
    config: dict[str, Any] = Field(default_factory=dict, description="The pass's parameters, validated by the pass.")

    _known = field_validator("name")(lambda cls, name: _registered(name, registry.PASSES, "pass"))


class PipelineSpec(_Strict):
    """Passes applied in order to make one more variant of the model (format conversions are added)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Label, shown after '@' in variant names.")
    passes: list[PassSpec] = Field(min_length=1, description="Passes, applied in order.")
    runtimes: list[str] | None = Field(None, description="Runtimes to measure it on; default: every one that loads it.")
    shapes: list[ShapeStrategy] | None = Field(None, description="Shape strategies; default: the workload's.")


# Named pipelines for `--pipelines`: the common recipes, so nobody has to write YAML to try them. They
# live with PipelineSpec, which they build, so the defaults below need no import from the passes.
PRESETS: dict[str, list[dict]] = {
    "ort-optimized": [{"name": "ort_optimize", "config": {"level": "extended", "transformer_fusion": True}}],
    "int8-dynamic": [{"name": "ort_quantize", "config": {"mode": "dynamic"}}],
    "int8-static": [{"name": "ort_quantize", "config": {"mode": "static"}}],
    # Accuracy-controlled: per-channel scales first (they alone lift MiniLM's cos_min from 0.94 to 0.99),
    # then the fewest layers back to FP32 that meet cos_min >= 0.99.
    "int8-dynamic-ac": [{"name": "ort_quantize", "config": {"mode": "dynamic", "per_channel": True, "max_drop": 0.01}}],
    "int8-static-ac": [{"name": "ort_quantize", "config": {"mode": "static", "per_channel": True, "max_drop": 0.01}}],
    "nncf-int8": [{"name": "nncf_quantize", "config": {}}],
    # NNCF's quantization with accuracy control: ops back to FP32 until cos_min >= 0.99.
    "nncf-int8-ac": [{"name": "nncf_quantize", "config": {"max_drop": 0.01}}],
    "nncf-int8-weights": [{"name": "nncf_compress_weights", "config": {"mode": "int8_asym"}}],
    "nncf-int4-weights": [{"name": "nncf_compress_weights", "config": {"mode": "int4_sym", "group_size": 64,
                                                                       "ratio": 1.0}}],
    # ORT MatMulNBits; accuracy_level 4 = INT8 activations, the only faster-than-FP32 path on x86.
    "ort-int4-weights": [{"name": "ort_weight_only", "config": {"bits": 4, "block_size": 32, "accuracy_level": 4}}],
    "ort-int8-weights": [{"name": "ort_weight_only", "config": {"bits": 8, "block_size": 32, "symmetric": True,
                                                                "accuracy_level": 4}}],
    "torchao-int8": [{"name": "torchao_quantize", "config": {"scheme": "int8_dynamic"}}],
    "torchao-int8-weights": [{"name": "torchao_quantize", "config": {"scheme": "int8_weight_only"}}],
    # FP8 (e4m3) weights and activations: cuda on compute capability 8.9+ (Ada, Hopper) only.
    "torchao-fp8": [{"name": "torchao_quantize", "config": {"scheme": "fp8_dynamic"}}],
    # Structured pruning without fine-tuning (FLAP importance, bias compensation): FFN neurons only.
    "prune-ffn-10": [{"name": "prune_structured", "config": {"ratio": 0.1, "targets": "ffn"}}],
    "prune-ffn-20": [{"name": "prune_structured", "config": {"ratio": 0.2, "targets": "ffn"}}],
    "prune-20": [{"name": "prune_structured", "config": {"ratio": 0.2, "targets": "heads+ffn"}}],
    # Static layer dropping (ShortGPT style): the most redundant layers, as many as cos_min >= 0.99 allows.
    "layer-drop": [{"name": "layer_drop", "config": {"max_drop": 0.01}}],
    # Adaptive (per-input) methods, calibrated to the same budget; torch runs them (adaptive/encoder.py).
    "early-exit": [{"name": "adaptive_early_exit", "config": {"min_layer": 2, "max_drop": 0.01}}],
    "early-exit-learned": [{"name": "adaptive_early_exit_learned", "config": {"min_layer": 2, "max_drop": 0.01}}],
    "token-prune": [{"name": "adaptive_token_prune", "config": {"max_drop": 0.01}}],
    # ... on top of torchao's INT8: the budget covers the combination.
    "early-exit-int8": [{"name": "torchao_quantize", "config": {"scheme": "int8_dynamic"}},
                        {"name": "adaptive_early_exit", "config": {"min_layer": 2, "max_drop": 0.01}}],
    "token-prune-int8": [{"name": "torchao_quantize", "config": {"scheme": "int8_dynamic"}},
                         {"name": "adaptive_token_prune", "config": {"max_drop": 0.01}}],
    # TensorFlow Lite conversions for LiteRT (from a SavedModel, .keras, or a model with a Keras definition).
    "tflite-fp16": [{"name": "tflite_convert", "config": {"mode": "float16"}}],
    "tflite-dynamic-int8": [{"name": "tflite_convert", "config": {"mode": "dynamic_int8"}}],
    "tflite-int8": [{"name": "tflite_convert", "config": {"mode": "int8"}}],
    # PyTorch -> .tflite directly with litert-torch (in its own managed environment; see passes/litert_torch.py).
    "litert-torch": [{"name": "litert_torch_export", "config": {"mode": "float32"}}],
    "litert-torch-int8": [{"name": "litert_torch_export", "config": {"mode": "int8"}}],
    # Generative models: llama.cpp weight types, ONNX Runtime GenAI and OpenVINO GenAI weight compression.
    "gguf-f16": [{"name": "gguf_quantize", "config": {"type": "f16"}}],
    "gguf-q8_0": [{"name": "gguf_quantize", "config": {"type": "q8_0"}}],
    "gguf-q4_1": [{"name": "gguf_quantize", "config": {"type": "q4_1"}}],
    "ort-genai-int4": [{"name": "ort_genai_build", "config": {"precision": "int4", "accuracy_level": 4}}],
    "ort-genai-int8": [{"name": "ort_genai_build", "config": {"precision": "int8", "accuracy_level": 4}}],
    "ort-genai-fp32": [{"name": "ort_genai_build", "config": {"precision": "fp32"}}],
    "ov-genai-int4": [{"name": "ov_genai_export", "config": {"weight_format": "int4", "group_size": 64}}],
    "ov-genai-int8": [{"name": "ov_genai_export", "config": {"weight_format": "int8"}}],
    # Test-time methods for causal LMs (passes/decoding.py): lossless speculation, context-conditioned FFN slicing.
    "prompt-lookup": [{"name": "speculative_decoding", "config": {"method": "prompt_lookup", "num_tokens": 10}}],
    "ov-genai-int8-lookup": [{"name": "ov_genai_export", "config": {"weight_format": "int8"}},
                             {"name": "speculative_decoding", "config": {"method": "prompt_lookup", "num_tokens": 10}}],
    "ov-genai-int8-draft-int4": [{"name": "ov_genai_export", "config": {"weight_format": "int8",
                                                                       "draft_weight_format": "int4"}}],
    # The F16 build verifies drafts from a Q4_0 build of the same weights (llama.cpp).
    "draft-q4": [{"name": "gguf_quantize", "config": {"type": "f16"}},
                 {"name": "speculative_decoding", "config": {"method": "draft_model", "num_tokens": 4,
                                                             "draft_type": "q4_0"}}],
    # Another model drafts: Qwen2.5-Coder-0.5B for a GGUF with its tokenizer (qwen-coder-1.5b; checked when built).
    "draft-model": [{"name": "speculative_decoding", "config": {"method": "draft_model", "draft": "qwen-coder-0.5b",
                                                                "num_tokens": 4}}],
    "griffin": [{"name": "griffin", "config": {"keep": 0.5}}],
    "hyper-griffin": [{"name": "hyper_griffin", "config": {"keep": 0.5}}],
    # ... on top of torchao's INT8 weight-only (its static counterpart: torchao-int8-weights on transformers).
    "griffin-int8": [{"name": "torchao_quantize", "config": {"scheme": "int8_weight_only"}},
                     {"name": "griffin", "config": {"keep": 0.5}}],
}


# Presets whose result only one runtime can run (torchao lives inside torch; export would drop it).
PRESET_RUNTIMES = {"torchao-int8": ["torch"], "torchao-int8-weights": ["torch", "transformers"],
                   "torchao-fp8": ["torch", "transformers"], "early-exit-int8": ["torch"],
                   "token-prune-int8": ["torch"], "tflite-fp16": ["litert"],
                   "tflite-dynamic-int8": ["litert"], "tflite-int8": ["litert"], "litert-torch": ["litert"],
                   "litert-torch-int8": ["litert"], "gguf-f16": ["llama_cpp"], "gguf-q8_0": ["llama_cpp"],
                   "gguf-q4_1": ["llama_cpp"], "ort-genai-int4": ["ort_genai"], "ort-genai-int8": ["ort_genai"],
                   "ort-genai-fp32": ["ort_genai"], "ov-genai-int4": ["openvino_genai"],
                   "ov-genai-int8": ["openvino_genai"], "prompt-lookup": ["transformers", "llama_cpp"],
                   "draft-q4": ["llama_cpp"], "draft-model": ["llama_cpp"], "ov-genai-int8-lookup": ["openvino_genai"],
                   "ov-genai-int8-draft-int4": ["openvino_genai"],
                   "griffin": ["transformers"], "hyper-griffin": ["transformers"],
                   "griffin-int8": ["transformers"]}


def preset(name: str) -> PipelineSpec:
    if name not in PRESETS:
        raise ConfigError(f"unknown pipeline {name!r}", f"choose from {', '.join(PRESETS)}, or define it in --config")
    return PipelineSpec(name=name, passes=PRESETS[name], runtimes=PRESET_RUNTIMES.get(name))


# What a run measures besides the plain runtimes when neither the config nor the model says otherwise:
# the two INT8 recipes that keep accuracy, each on the runtime it was made for. A model can name its
# own in `meta["default_pipelines"]` (an image CNN wants static INT8, not dynamic).
DEFAULT_PIPELINES = {"int8-dynamic-ac": ["onnxruntime"], "nncf-int8": ["openvino"]}


# The accuracy-controlled twin of each recipe: what the defaults become when the run has a fidelity bound.
ACCURACY_CONTROLLED = {"nncf-int8": "nncf-int8-ac", "int8-dynamic": "int8-dynamic-ac", "int8-static": "int8-static-ac"}


def default_pipelines(defaults: dict[str, list[str]] | None = None, min_cos: float | None = None) -> list[PipelineSpec]:
    """The model's default recipes. With a fidelity bound (`--min-cos`), each INT8 recipe is its
    accuracy-controlled twin instead, with the budget set to that bound (max_drop = 1 - min_cos): it keeps
    what plain INT8 would give where that meets the bound, and returns ops to FP32 only where it does not."""
    chosen = DEFAULT_PIPELINES if defaults is None else defaults
    out = []
    for name, runtimes in chosen.items():
        spec = preset(ACCURACY_CONTROLLED.get(name, name) if min_cos is not None else name)
        out.append(with_budget(spec, min_cos).model_copy(update={"runtimes": runtimes}))
    return out


def with_budget(spec: PipelineSpec, min_cos: float | None) -> PipelineSpec:
    """The pipeline with its fidelity budget set to a bound: every pass with a `max_drop` (accuracy-controlled
    INT8, layer dropping, the adaptive methods) gets max_drop = 1 - min_cos."""
    if min_cos is None or not any("max_drop" in p.config for p in spec.passes):
        return spec
    budget = round(1.0 - min_cos, 6)
    return spec.model_copy(update={"passes": [p.model_copy(update={"config": {**p.config, "max_drop": budget}})
                                              if "max_drop" in p.config else p for p in spec.passes]})


class WorkloadConfig(_Strict):
    texts: Path | None = Field(
        None, description="Text corpus: one text a line, or JSONL with a 'text' field. Default: stdlib docstrings."
    )
    inputs: Path | None = Field(
        None, description="An .npz of input tensors (key = input name, first axis = samples), for tensor models."
    )
    num_samples: int = Field(512, ge=1, description="Samples loaded into LoadGen's query sample library.")
    eval_samples: int = Field(64, ge=1, description="Samples whose outputs are checked against the reference.")
    max_length: int = Field(128, ge=1, description="Token limit; `fixed` shapes pad to it.")
    shapes: list[ShapeStrategy] = Field(
        default_factory=lambda: [ShapeStrategy.fixed, ShapeStrategy.dynamic],
        description="Shape strategies to measure (fixed, dynamic, bucketed).",
    )
    batch_size: int = Field(32, ge=1, description="Batch size for Offline and for the fidelity check.")
    seed: int = Field(0, description="Seed for sampling the corpus and generating inputs.")


class LengthDist(_Strict):
    """Token counts drawn log-normally around the median (sigma 0.5), clipped to [min, max]; min == max is fixed."""

    median: int = Field(ge=1)
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @field_validator("max")
    @classmethod
    def _ordered(cls, high: int, info) -> int:
        low, mid = info.data.get("min"), info.data.get("median")
        if low is not None and mid is not None and not low <= mid <= high:
            raise ValueError(f"need min <= median <= max, got {low}, {mid}, {high}")
        return high


class GenerationConfig(_Strict):
    """Generative (LLM) runs: prompt and output lengths, and how fidelity is checked. Greedy decoding;
    every request generates exactly its output length (end-of-sequence is ignored) so runtimes compare."""

    prompt_tokens: LengthDist = Field(default_factory=lambda: LengthDist(median=64, min=16, max=192),
                                      description="Prompt lengths, cut from the corpus's documents.")
    output_tokens: LengthDist = Field(default_factory=lambda: LengthDist(median=64, min=64, max=64),
                                      description="Tokens generated per request.")
    prompts: Literal["continue", "grounded"] = Field(
        "continue", description="What the prompts ask. continue: an excerpt of the corpus, to be continued. "
        "grounded: a passage of the corpus followed by an instruction to repeat it (the copy-heavy output of "
        "retrieval-augmented use, where speculative decoding from the prompt pays).")
    fidelity_prompts: int = Field(8, ge=1, description="Prompts whose greedy tokens are compared with the reference's.")
    fidelity_tokens: int = Field(32, ge=1, description="Tokens generated per fidelity prompt.")
    perplexity_tokens: int = Field(512, ge=0, description="Tokens of held-out corpus text scored for perplexity "
                                   "(0: skip).")
    ttft_ms_p99: float = Field(2000.0, gt=0, description="Server scenario bound on time to first token (p99).")
    tpot_ms_p99: float = Field(200.0, gt=0, description="Server scenario bound on time per output token (p99).")
    context: int = Field(1024, ge=64, description="Context window the runtimes allocate (KV cache size).")


class LoadGenConfig(_Strict):
    server_target_qps: float | None = Field(
        None, gt=0, description="Server scenario arrival rate; default: half the throughput seen in warm-up."
    )
    server_latency_ms_p99: float = Field(100.0, gt=0, description="Server scenario p99 latency bound (ms).")
    server_max_batch: int = Field(8, ge=1, description="Largest batch the Server scenario's queue forms.")
    multi_stream_samples_per_query: int = Field(8, ge=1, description="Samples per MultiStream query.")
    quick_duration_ms: int = Field(1500, ge=100, description="Minimum duration of each scenario under --quick.")


class RoundsConfig(_Strict):
    """Each variant is measured in several rounds, each in a fresh process, to see process-to-process noise.

    On a shared VM one process can run 20-50% slower than the next, for its whole life. A single
    measurement cannot show that; two rounds can, and `compare` widens its intervals by what they show.
    """

    count: int | None = Field(
        None, ge=1, le=20, description="Rounds per variant. Default: 2 under --quick (each half as long), "
        "1 for compliant runs (each round is a full-length MLPerf run).")
    noisy_spread_pct: float = Field(
        10.0, gt=0, description="Rounds whose ranking figures differ by more than this (% of their median) "
        "mark the measurement noisy, and it gets extra rounds.")
    drift_pct: float = Field(
        20.0, gt=0, description="A round whose median latency moves by more than this (%) from its first half to "
        "its second (a machine warming up, throttling, or a noisy neighbour) also gets extra rounds.")
    extra_when_noisy: int = Field(1, ge=0, le=10, description="Rounds added to a noisy or drifting measurement.")
    ci_target_pct: float | None = Field(
        None, gt=0, le=50, description="Measure until the 95% CI half-width of every scenario's ranking figure "
        "(SingleStream p90, MultiStream p99, Offline samples/s) is below this % of the figure, adding one round at a time, up to "
        "`max_rounds` or `ci_budget_s`. Unset: the planned rounds (plus the noisy extras) only.")
    max_rounds: int = Field(8, ge=1, le=50, description="Most rounds per variant when measuring to a CI target.")
    ci_budget_s: float = Field(
        300.0, gt=0, description="Most seconds per variant spent measuring to a CI target; the rounds then stop "
        "and the variant keeps the CI it reached.")

    def planned(self, quick: bool) -> int:
        return self.count or (2 if quick else 1)


class ConstraintsConfig(_Strict):
    """Bounds the recommended variant must meet (`--profile`); unset ones do not apply."""

    max_p99_ms: float | None = Field(None, gt=0, description="Highest SingleStream p99 latency (ms).")
    max_p90_ms: float | None = Field(None, gt=0, description="Highest SingleStream p90 latency (ms).")
    min_cos: float | None = Field(None, ge=-1, le=1, description="Lowest cos_min against the FP32 reference.")
    min_throughput: float | None = Field(None, gt=0, description="Lowest Offline throughput (samples/s).")
    max_memory_mb: float | None = Field(None, gt=0, description="Highest peak RSS (MB).")


class SearchConfig(_Strict):
    """`inferarena search`: how to explore the joint space for the run's profile."""

    strategy: Literal["grid", "optuna"] = Field(
        "optuna", description="grid: every point; optuna: TPE sampling within the trial and time budget.")
    trials: int | None = Field(None, ge=1, description="Most variants to measure; default: the whole space (grid) "
                               "or a quarter of it (optuna).")
    time_budget_s: float | None = Field(
        None, gt=0, description="Seconds for the search's measurements, the finalists' confirmation included: no "
        "trial starts once the time left would not cover the confirmation (estimated from the mean round so far). "
        "The reference and the builds come before the clock starts.")
    prune_margin: float = Field(
        0.25, ge=0, description="A trial whose first round trails the best so far by more than this fraction "
        "gets no further rounds.")
    finalists: int = Field(3, ge=0, description="Trials measured again at the end, interleaved, in fresh processes: "
                           "the best of each runtime × precision, then the best of the rest up to this many; the pick "
                           "is made among them on these rounds. 0: no confirmation, the pick comes from the trials.")


class FidelityConfig(_Strict):
    min_cos: float = Field(0.99, description="A variant whose worst cosine to the reference is below this fails.")
    min_cos_lossy: float = Field(
        0.8, description="The same check for variants that lower precision on purpose (int8, int4, mixed): it "
        "catches broken models, not accuracy loss, which the leaderboard shows as cos min.")
    max_abs_diff: float | None = Field(None, description="Optional bound on the max absolute difference.")


class EnergyConfig(_Strict):
    tdp_w: float | None = Field(
        None, gt=0, description="CPU package TDP (W) for the energy estimate used when no power counter is readable."
    )
    tdp_threads: int | None = Field(
        None, ge=1, description="Hardware threads that tdp_w covers; default: the threads this host sees."
    )
    idle_s: float = Field(1.0, ge=0, description="Seconds of idle power measured before each variant (counters only).")


class CostConfig(_Strict):
    instance: str | None = Field(None, description="Built-in instance whose price to use, e.g. aws/m7i.large.")
    usd_per_hour: float | None = Field(None, gt=0, description="Your own price per hour; overrides instance.")


class RunConfig(_Strict):
    """Everything that decides a run's numbers. Stored with the run; `--config` reads it back."""

    version: Literal[1] = 1
    model: str = Field("minilm", description="Bundled model name, HF model folder, or .onnx file.")
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    runtimes: list[RuntimeSpec] = Field(
        default_factory=list, description="Runtimes to measure; empty means every installed runtime."
    )
    pipelines: list[PipelineSpec] | None = Field(
        None,
        description="Optimization pipelines, each measured as extra variants (see --pipelines). Default: the "
        "model's own; for MiniLM and user models INT8 with accuracy control on ONNX Runtime and NNCF INT8 on "
        "OpenVINO, for EfficientNet-Lite0 NNCF INT8 on OpenVINO and full-INT8 TFLite on LiteRT; [] for none.",
    )

    def pipelines_for(self, meta: dict) -> list[PipelineSpec]:
        """The pipelines to measure on a model with this artifact meta."""
        if self.pipelines is not None:
            return self.pipelines
        return default_pipelines(meta.get("default_pipelines"), self.constraints.min_cos)
    scenarios: list[str] = Field(
        default_factory=lambda: ["single_stream", "multi_stream", "server", "offline"],
        description="LoadGen scenarios to run.",
    )
    quick: bool = Field(False, description="Short durations for demos and tests; results are not MLPerf-compliant.")
    threads: int | None = Field(None, ge=1, description="Threads per runtime; default: all cores.")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where the variants compute: cpu, cuda (an NVIDIA GPU; runtimes that do not run there "
        "are skipped with the reason), or auto (cuda where a GPU is visible, else cpu). The FP32 reference is "
        "always computed on the CPU.")
    loadgen: LoadGenConfig = Field(default_factory=LoadGenConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    evaluators: list[str] | None = Field(
        None,
        description="Task metrics measured on every variant whose model task they fit, next to the FP32 "
        "reference's score (lee_docsim: Spearman against human document similarity; wordsim353, simlex999; "
        "imagenet_photos: top-5 on labeled photos). Default: lee_docsim for embedding models, "
        "imagenet_photos for image classifiers; [] for none.")
    profile: Literal["latency", "throughput", "balanced", "small", "energy", "cost"] | None = Field(
        None, description="Recommend one variant for this priority, with CIs and the reasons (see `recommend`).")
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    worker_timeout_s: float | None = Field(
        None, gt=0, description="A variant still running after this is killed. Default: 15 min quick, 24 h compliant."
    )

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in registry.SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(registry.SCENARIOS)}")
        if not names:
            raise ValueError("at least one scenario is needed")
        return names

    _known_evaluators = field_validator("evaluators")(
        lambda cls, names: None if names is None else [_registered(n, registry.EVALUATORS, "evaluator") for n in names])

    def timeout_s(self) -> float:
        # Compliant scenarios run >= 10 min each, and MultiStream/Server need 270k queries: allow a day.
        return self.worker_timeout_s or (900.0 if self.quick else 86_400.0)

    def config_hash(self) -> str:
        return digest(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: Path) -> "RunConfig":
        try:
            data = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist", "pass the path of a YAML run config") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML ({exc})", "fix the YAML syntax") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of fields", "see `inferarena run --help`")
        return cls.parse(data, source=str(path))

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "config") -> "RunConfig":
        """Validate a dict, turning pydantic's report into one line that names the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, source) from None


def config_error(exc: ValidationError, source: str) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{source}: field '{where}': {message}{extra}", "correct that field and run again")
