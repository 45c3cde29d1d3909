"""The typed records every layer shares: what a variant is, what it measured, and what each figure means.

One record goes from the worker to the store and back to the reports:

    VariantSpec      what to measure (runtime, precision, shape, knobs, pipeline and its build steps)
    ScenarioResult   one LoadGen scenario's figures, LoadGen's verdict and the raw per-sample latencies
    VariantResult    one variant: fidelity, memory, build lineage, and its ScenarioResults by name;
                     `merge(rounds)` joins rounds measured in separate processes, `flat()` gives the
                     `scenario.metric` keys of `--json`, `to_row()` / `from_row()` map it to the store
    RunRecord        a stored run: its config, environment, workload, notes and variants

`METRICS` is the one catalogue of figures: unit, direction (higher is better, lower, or neither) and
how rounds merge. Ranking, comparing, merging and plotting all read it, so a new figure is declared
once. Imports nothing of inferarena but `registry` and `stats`, so every layer can import it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np

from inferarena import registry, stats
from inferarena.artifacts import PassRun

# A build step: (pass name, its config as canonical JSON). Hashable, so variants can share builds.
Step = tuple[str, str]
Merge = Literal["mean", "max", "min", "first"]


@dataclass
class TaskScore:
    """A variant's score on a task metric (an evaluator such as Spearman on Lee's document similarities, or
    ImageNet top-1), or why it could not be computed: one broken metric never costs the variant its figures."""

    name: str
    metric: str | None = None
    value: float | None = None
    n: int | None = None  # inputs scored
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored shape: only the fields it has (a failure has no value, a score no error)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def of(cls, data: "TaskScore | dict[str, Any]") -> "TaskScore":
        if isinstance(data, TaskScore):
            return data
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RunSummary:
    """What a sweep (`arena.run`) or an agents run (`agents.run.run`) hands its command: the stored run, whether
    an earlier attempt was resumed, and what that attempt had already stored."""

    run_id: int
    resumed: bool
    skipped: list[str] = field(default_factory=list)  # variants already stored by an earlier attempt
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Metric:
    """One figure: its key (the unit is in the name), unit, direction and how rounds merge."""

    key: str
    unit: str
    higher_is_better: bool | None  # None: context, not a figure anyone ranks by
    merge: Merge = "mean"  # over rounds: mean of the rounds; max (peaks); min (a bound met only if every round met it)
    label: str = ""
    short: str = ""  # a table header, after the scenario's own short name (`Scenario.short`): "p90 ms", "samples/s"
    fmt: str = ".3g"  # how a table writes it


def _m(key: str, unit: str, higher: bool | None, merge: Merge = "mean", label: str = "") -> Metric:
    short, fmt = _SHORT.get(key, (label or key, ".3g"))
    return Metric(key, unit, higher, merge, label or key, short, fmt)


# Table headers and formats (the HTML leaderboard's), by key.
_SHORT: dict[str, tuple[str, str]] = {
    **{f"latency_ms_{q}": (f"{q} ms", ".3g") for q in ("p50", "p90", "p99")},
    **{f"{kind}_ms_{q}": (f"{kind.upper()} {q} ms", ".3g") for kind in ("ttft", "tpot") for q in ("p50", "p90")},
    "target_qps": ("QPS", ".3g"), "throughput_sps": ("samples/s", ".4g"), "energy_j_per_query": ("J/query", ".3g"),
    "cost_usd_per_1m": ("$/1M", ".3g"), "pct_of_peak": ("% peak (executed)", ".3g"),
    "useful_pct_of_peak": ("% peak (useful)", ".3g"),
    "useful_pct_of_best_peak": ("% best-precision peak (useful)", ".3g"), "padding_waste_pct": ("padding %", ".3g"),
    "cos_min": ("cos min", ".5f"), "top1_agreement": ("top-1 agree", ".3f"), "token_agreement": ("token agree", ".3f"),
    "perplexity": ("perplexity", ".4g"), "tokens_per_s": ("tok/s", ".4g"), "decode_tokens_per_s": ("decode tok/s", ".4g"),
    "pct_of_bandwidth": ("% BW roofline", ".3g"), "offline_tokens_per_s": ("Offline tok/s", ".4g"),
    "server_requests_per_s": ("Server req/s", ".3g"), "layers_mean": ("layers used (mean)", ".2f"),
    "tokens_kept_ratio": ("tokens kept", ".2f"), "ffn_kept_ratio": ("FFN kept", ".2f"),
    "active_params_ratio": ("active params", ".2f"), "acceptance_rate": ("drafts accepted", ".2f"),
    "tokens_per_step": ("tokens/step", ".2f"), "controller_ms": ("controller ms", ".3g"),
    "accuracy": ("accuracy", ".3f"), "accuracy_ci_low": ("accuracy CI low", ".3f"),
    "accuracy_ci_high": ("accuracy CI high", ".3f"), "prompt_tokens": ("prompt tokens", ".0f"),
    "completion_tokens": ("completion tokens", ".0f"), "llm_calls": ("LLM calls", ".0f"), "wall_s": ("wall s", ".4g"),
    "energy_j_per_task": ("J/task", ".3g"), "prune_rate": ("pruned", ".2f"), "rectify_rounds_mean": ("rectify rounds", ".2f"),
    "tokens_per_correct": ("tokens/correct", ".4g"), "truncated_rate": ("truncated", ".2f"),
    "accuracy_per_1k_tokens": ("accuracy per 1k tokens", ".3g"), "cost_usd_per_1k_tasks": ("$/1k tasks", ".3g"),
    "peak_rss_mb": ("peak RSS MB", ".0f"), "round_spread_pct": ("rounds spread %", ".0f"),
    "ci_half_width_pct": ("±CI %", ".1f"),
}


_LATENCY = [_m(f"latency_ms_{q}", "ms", False, label=f"{q} latency") for q in ("mean", "p50", "p90", "p95", "p99", "p99_9")]
_TOKENS = [_m(f"{kind}_ms_{q}", "ms", False, label=f"{kind.upper()} {q}")
           for kind in ("ttft", "tpot", "itl") for q in ("mean", "p50", "p90", "p99")]

METRICS: dict[str, Metric] = {m.key: m for m in (
    *_LATENCY,
    *_TOKENS,
    _m("latency_ms_max", "ms", False, "max", "max latency"),
    _m("qps", "queries/s", True, label="QPS"),
    _m("throughput_sps", "samples/s", True, label="throughput"),
    _m("target_qps", "queries/s", True, label="offered QPS"),
    _m("completed_qps", "queries/s", True, label="completed QPS"),
    _m("latency_bound_met", "", True, "min", "latency bound met"),
    _m("latency_bound_ms", "ms", None, "first", "latency bound"),
    _m("ttft_bound_ms", "ms", None, "first", "TTFT bound"),
    _m("tpot_bound_ms", "ms", None, "first", "TPOT bound"),
    _m("drift_pct", "%", None, label="drift within a round"),
    _m("cpu_util_pct", "%", None, label="CPU (% of one core)"),
    _m("cpu_util_pct_of_host", "%", None, label="CPU (% of the host)"),
    _m("cpu_util_pct_per_core", "%", None, label="CPU per core"),
    _m("peak_rss_mb", "MB", False, "max", "peak RSS"),
    _m("window_peak_rss_mb", "MB", False, "max", "peak RSS in the window"),
    _m("uss_mb", "MB", False, label="USS"),
    _m("gpu_mem_used_mb_peak", "MB", False, "max", "GPU memory peak"),
    _m("gpu_util_pct_avg", "%", None, label="GPU busy (% of time a kernel ran, NVML)"),
    _m("gpu_sm_util_pct_avg", "%", None, label="GPU SM utilisation (NVML process samples)"),
    _m("energy_j_per_query", "J", False, label="energy per query"),
    _m("energy_j_per_token", "J", False, label="energy per token"),
    _m("power_w_avg", "W", False, label="average power"),
    _m("energy_source", "", None, "first"),
    _m("energy_basis", "", None, "first"),
    _m("cost_usd_per_1m", "$", False, label="cost per 1M queries"),
    _m("cost_usd_per_1m_tokens", "$", False, label="cost per 1M tokens"),
    _m("cost_basis", "", None, "first"),
    _m("gflops_per_query", "GFLOP", None, label="work per query"),
    _m("gflops_per_s", "GFLOP/s", True, label="achieved GFLOP/s"),
    _m("pct_of_peak", "%", True, label="% of GEMM peak (executed work)"),
    _m("useful_gflops_per_query", "GFLOP", None, label="useful work per query"),
    _m("useful_gflops_per_s", "GFLOP/s", True, label="useful GFLOP/s"),
    _m("useful_pct_of_peak", "%", True, label="% of GEMM peak (useful work)"),
    _m("best_peak_precision", "", None, "first"),
    _m("useful_pct_of_best_peak", "%", True, label="% of the host's best GEMM peak (useful work)"),
    _m("padding_waste_pct", "%", False, label="work spent on padding"),
    _m("tokens_per_s", "tok/s", True, label="output tokens/s"),
    _m("decode_tokens_per_s", "tok/s", True, label="decode tokens/s"),
    _m("output_tokens", "tokens", None, label="output tokens"),
    _m("batch", "", None, "first"),
    _m("bytes_per_token_mb", "MB", None, label="bytes read per token"),
    _m("achieved_gb_per_s", "GB/s", True, label="achieved bandwidth"),
    _m("pct_of_bandwidth", "%", True, label="% of the bandwidth roofline"),
    # How certain a merged figure is.
    _m("rounds", "", None, "first"),
    _m("round_spread_pct", "%", False, label="spread of the rounds"),
    _m("ci_half_width_pct", "%", False, label="95% CI half-width"),
    # Fidelity against the FP32 reference.
    _m("cos_mean", "", True, label="cos_mean"),
    _m("cos_min", "", True, label="cos_min"),
    _m("max_abs_diff", "", False, label="max abs diff"),
    _m("samples", "", None, "first"),
    _m("top1_agreement", "", True, label="top-1 agreement"),
    _m("top5_agreement", "", True, label="top-5 agreement"),
    _m("token_agreement", "", True, label="token agreement"),
    _m("exact_match", "", True, label="exact match"),
    _m("first_divergence_mean", "tokens", True, label="first divergence"),
    _m("perplexity", "", False, label="perplexity"),
    _m("perplexity_delta_pct", "%", False, label="Δ perplexity"),
    _m("perplexity_reference", "", None, "first", label="FP32 perplexity"),
    _m("prompts", "", None, "first"),
    _m("tokens_per_prompt", "tokens", None, "first"),
    # Adaptive variants (adaptive.*): what the policy decided per input, on the evaluation samples.
    _m("method", "", None, "first", "adaptive method"),
    _m("layers_mean", "layers", False, "first", "layers used (mean)"),
    _m("layers_p50", "layers", None, "first", "layers used (p50)"),
    _m("layers_p90", "layers", None, "first", "layers used (p90)"),
    _m("layers_hist", "inputs", None, "first", "inputs by layers used"),
    _m("early_exit_ratio", "", None, "first", "inputs that exited early"),
    _m("tokens_kept_ratio", "", None, "first", "tokens kept"),
    _m("active_params_ratio", "", False, "first", "active params"),
    _m("acceptance_rate", "", True, "first", "draft tokens accepted"),
    _m("draft_tokens_per_step", "tokens", None, "first", "draft tokens per step"),
    _m("tokens_per_step", "tokens", True, "first", "tokens per step"),
    _m("steps", "", None, "first", "verification steps"),
    _m("ffn_kept_ratio", "", None, "first", "FFN neurons kept"),
    _m("controller_ms", "ms", False, "mean", "controller time"),
    _m("inputs", "", None, "first", "inputs decided"),
    # Multi-agent workflows (`inferarena agents`): one arm of a workflow on one model variant, over its tasks.
    _m("tasks", "tasks", None, "first", "tasks"),
    _m("correct", "tasks", None, "first", "tasks answered right"),
    _m("accuracy", "", True, label="accuracy"),
    _m("accuracy_ci_low", "", None, "first", "accuracy, 95% CI low (Wilson)"),
    _m("accuracy_ci_high", "", None, "first", "accuracy, 95% CI high (Wilson)"),
    _m("prompt_tokens", "tokens", False, label="prompt tokens"),
    _m("completion_tokens", "tokens", False, label="completion tokens"),
    _m("tokens_per_task", "tokens", False, label="tokens per task"),
    _m("tokens_per_correct", "tokens", False, label="tokens per correct answer"),
    _m("accuracy_per_1k_tokens", "", True, label="accuracy per 1,000 tokens per task"),
    _m("truncated_rate", "", False, label="replies cut at max_tokens"),
    _m("llm_calls", "calls", False, label="LLM calls"),
    _m("auditor_calls", "calls", None, label="auditor calls"),
    _m("wall_s", "s", False, label="wall time"),
    _m("seconds_per_task", "s", False, label="time per task"),
    _m("energy_j", "J", False, label="energy"),
    _m("energy_j_per_task", "J", False, label="energy per task"),
    _m("cost_usd_per_1k_tasks", "$", False, label="cost per 1,000 tasks"),
    _m("prune_rate", "", None, label="messages pruned"),
    _m("rectify_rounds_mean", "rounds", None, label="rectify rounds per message"),
    _m("fallback_rate", "", None, label="tasks saved by the fallback"),
    # Decided across variants.
    _m("model_mb", "MB", False, label="model size on disk"),
    _m("balanced_score", "", True, label="balanced score"),
)}


def metric(key: str) -> Metric | None:
    """The catalogue entry of a key, bare (`latency_ms_p90`) or flat (`single_stream.latency_ms_p90`,
    `generation.offline_tokens_per_s`); task metrics (`task.NAME.METRIC`) are scores, higher is better."""
    if key.startswith("task."):
        return Metric(key, "", True, "first", key.split(".", 1)[1])
    bare = key.rsplit(".", 1)[-1]
    if bare.endswith("_by_round") and bare.removesuffix("_by_round") in METRICS:  # each round's figure, a list
        return Metric(bare, METRICS[bare.removesuffix("_by_round")].unit, None, "first", bare)
    if bare in _SUMMARY_ALIASES:  # the figure it repeats, under its own header
        short, fmt = _SHORT[bare]
        return replace(METRICS[_SUMMARY_ALIASES[bare]], short=short, fmt=fmt)
    return METRICS.get(bare)


# Summary keys (`generation.*`) named after their scenario, pointing at the figure they repeat.
_SUMMARY_ALIASES = {"offline_tokens_per_s": "tokens_per_s", "server_requests_per_s": "target_qps"}


def loadgen_merge(key: str) -> Merge:
    """LoadGen's own `result_*` and `effective_*` fields, kept raw in `ScenarioResult.loadgen`: a maximum
    merges by max, a minimum by min, a bound met only if every round met it, the rest by mean."""
    if key.endswith("_met"):
        return "min"
    return "max" if "_max" in key else "min" if "_min_" in key else "mean"


def higher_is_better(key: str) -> bool:
    """Direction for sorting and comparing; a figure the catalogue does not know sorts lowest first."""
    found = metric(key)
    return bool(found and found.higher_is_better)


def merge_metrics(dicts: list[dict[str, Any]], rule_of=None) -> dict[str, Any]:
    """One figure per key from several rounds, by each metric's merge rule (`rule_of(key)`, default the
    catalogue's; a key it does not know merges by mean); text and flags come from the first round,
    lists of numbers merge element by element (mean)."""
    out: dict[str, Any] = {}
    for key, value in dicts[0].items():
        values = [d.get(key) for d in dicts]
        if isinstance(value, bool) or not all(_number(v) for v in values):
            lists = all(isinstance(v, list) and len(v) == len(value) and all(map(_number, v)) for v in values)
            out[key] = [round(float(np.mean(col)), 3) for col in zip(*values)] if isinstance(value, list) and lists else value
            continue
        rule = rule_of(key) if rule_of else (metric(key) or Metric(key, "", None)).merge
        out[key] = {"max": max, "min": min, "first": lambda v: v[0]}.get(rule, lambda v: float(np.mean(v)))(values)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class VariantSpec:
    """One variant to measure. `steps` and `pipeline` are its lineage: the passes (conversions
    included) that turn the source model into what the runtime loads, and the named pipeline they
    come from, whose definition `pipeline_config` keeps so a pick can be reproduced from data."""

    name: str
    runtime: str
    precision: str  # what the variant computes in: fp32, bf16, int8, ...
    shape: str
    knobs: dict[str, Any] = field(hash=False)
    # Passes that turn the source artifact into what the runtime loads (conversions included); () if none.
    steps: tuple[Step, ...] = ()
    pipeline: str | None = None
    # The precision the runtime is asked for; differs from `precision` for quantized models (loaded at fp32).
    runtime_precision: str | None = None
    batch_size: int | None = None  # Offline/eval batch; None: the workload's
    lossy: bool = False  # a pass changed the model on purpose (quantized, pruned): fidelity.min_cos_lossy applies
    kind: str = "predict"  # the kind of model it runs (kinds registry): predict, generate
    pipeline_config: str | None = field(default=None, hash=False, compare=False)  # PipelineSpec as JSON
    device: str = "cpu"  # where it computes: cpu, cuda (a run's resolved --device)

    @property
    def load_precision(self) -> str:
        return self.runtime_precision or self.precision


@dataclass
class ScenarioResult:
    """One scenario's measurement of one variant (one round, or its rounds merged)."""

    scenario: str
    valid: bool
    invalid_reason: str | None
    mode: str  # "quick (not MLPerf-compliant)" or "compliant"
    metrics: dict[str, Any]  # unit in every name; numbers, plus the text saying how energy and cost were had
    loadgen: dict[str, Any] = field(default_factory=dict)  # LoadGen's own result_* and effective_* figures
    # Every sample's latency in completion order (Offline: time from the one query's issue to completion).
    latencies_ms: np.ndarray | None = None
    round_sizes: list[int] | None = None  # samples per round in `latencies_ms`, when merged from rounds

    @staticmethod
    def merge(rounds: list[ScenarioResult]) -> ScenarioResult:
        """The rounds of one scenario: figures merged by the catalogue's rules, the spread of the
        scenario's central figure across rounds, and the CI half-width of its ranking figure."""
        first = rounds[0]
        metrics = merge_metrics([r.metrics for r in rounds])
        cls = registry.load(registry.SCENARIOS, first.scenario)
        values = [r.metrics.get(cls.spread_metric) for r in rounds]
        if all(_number(v) for v in values):
            metrics[f"{cls.spread_metric}_by_round"] = values
            metrics["round_spread_pct"] = round(spread_pct(values), 2)
        metrics["rounds"] = len(rounds)
        width = ci_width(first.scenario, rounds)
        if width is not None:
            metrics["ci_half_width_pct"] = round(width, 2)
        invalid = [r.invalid_reason for r in rounds if not r.valid]
        samples = [np.asarray(r.latencies_ms) for r in rounds if r.latencies_ms is not None]
        return replace(first, valid=not invalid, invalid_reason="; ".join(dict.fromkeys(i or "" for i in invalid)) or None,
                       metrics=metrics, loadgen=merge_metrics([r.loadgen for r in rounds], loadgen_merge),
                       latencies_ms=np.concatenate(samples) if samples else None, round_sizes=[len(s) for s in samples])


def spread_pct(values: list[float]) -> float:
    """(max - min) / median, in %: how far apart the rounds landed."""
    values = [v for v in values if v is not None and v == v]
    if len(values) < 2 or not np.median(values):
        return 0.0
    return float((max(values) - min(values)) / abs(np.median(values)) * 100.0)


def ci_width(scenario: str, rounds: list[ScenarioResult]) -> float | None:
    """The CI half-width (%) of a scenario's ranking figure over its rounds' raw samples."""
    statistic = registry.load(registry.SCENARIOS, scenario).ci_statistic
    samples = [r.latencies_ms for r in rounds if r.latencies_ms is not None]
    return stats.half_width_pct(samples, statistic) if statistic and samples else None


# Fields of VariantResult stored as JSON columns, and the build fields kept together in build_json.
_JSON_COLUMNS = ("fidelity", "memory", "session_info", "node", "payload")
_BUILD = ("passes", "kept_layers", "pass_report", "artifact", "pruned", "confirmed", "batch_size", "estimates", "adaptive",
          "device")


@dataclass
class VariantResult:
    """A measured (or failed) variant, from the worker to the store to the reports."""

    name: str
    runtime: str
    precision: str
    shape: str
    knobs: dict[str, Any] = field(default_factory=dict)
    kind: str = "predict"
    pipeline: str | None = None
    pipeline_config: dict | None = None  # the PipelineSpec it was built with (None: no pipeline)
    status: str = "ok"  # ok | failed
    error: str | None = None  # one line
    error_detail: str | None = None  # traceback or the worker log's tail
    fidelity: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    session_info: dict[str, Any] | None = None
    load_s: float | None = None
    task: list[TaskScore] = field(default_factory=list)  # task metrics, e.g. Spearman on human judgments
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    # What was deployed and how it was made: the artifact, and each pass with its input (lineage).
    artifact: str | None = None
    batch_size: int | None = None
    passes: list[PassRun] = field(default_factory=list)  # the build's lineage, one node per pass applied
    kept_layers: list | None = None
    pass_report: dict | None = None
    pruned: bool = False  # a search trial stopped after one round
    # A search finalist: its figures are its confirmation rounds alone, measured interleaved with the others'.
    confirmed: bool = False
    estimates: dict[str, float] | None = None  # warm-up timings (the first round's, reused by later ones)
    rounds: int = 1
    adaptive: dict[str, Any] | None = None  # an adaptive variant's policy and per-input decisions (adaptive.*)
    # The machine its rounds ran on (`hardware.node_info`): hostname, CPU model, cores, accelerator, the
    # cluster's node id where a cluster ran it, and the hardware class that rankings group by.
    node: dict[str, Any] | None = None
    device: str = "cpu"  # where it computed: cpu, cuda
    # What only its kind reads, in the kind's own shape (a workflow arm's outcome: `kinds.workflow.ArmOutcome`),
    # stored in a column of its own so that the shared fields keep their one meaning.
    payload: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Nodes arrive as stored dicts (the store, --json, tests) or as PassRuns (a build): one shape from here.
        self.passes = [PassRun.of(p) for p in self.passes]
        self.task = [TaskScore.of(t) for t in self.task or []]

    @classmethod
    def of(cls, spec: VariantSpec, **values: Any) -> VariantResult:
        """A result for `spec`, with the spec's identity and lineage."""
        pipeline = json.loads(spec.pipeline_config) if spec.pipeline_config else None
        return cls(name=spec.name, runtime=spec.runtime, precision=spec.precision, shape=spec.shape,
                   knobs=dict(spec.knobs), kind=spec.kind, pipeline=spec.pipeline, pipeline_config=pipeline,
                   batch_size=spec.batch_size, device=spec.device, **values)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def base(self) -> str:
        """The name without its pipeline: `llama_cpp/q4_k_m` of `llama_cpp/q4_k_m@rectify-or-reject` (for a
        workflow, the model variant an arm ran on)."""
        suffix = f"@{self.pipeline}" if self.pipeline else None
        return self.name[: -len(suffix)] if suffix and self.name.endswith(suffix) else self.name

    @property
    def adapts_per_input(self) -> bool:
        """Whether its cost is decided per input (early exit, token pruning, speculation, FFN slicing): the
        session counted per-input decisions. A static method's figures (layer-drop) have none."""
        return bool(self.adaptive) and any(k in self.adaptive for k in ("inputs", "steps"))

    @property
    def parent_artifact(self) -> str | None:
        """The artifact the last pass started from (Olive's footprint: parent and the pass that made it)."""
        return (self.passes[-1].parent or None) if self.passes else None

    @staticmethod
    def merge(rounds: list[VariantResult]) -> VariantResult:
        """One result from rounds that all succeeded; the first round gives what does not change between
        rounds (fidelity, task scores, build), timings and trackers are merged per scenario."""
        if len(rounds) == 1:
            return replace(rounds[0])
        first = rounds[0]
        by_name: dict[str, list[ScenarioResult]] = {}
        for r in rounds:
            for name, s in r.scenarios.items():
                by_name.setdefault(name, []).append(s)
        memory = [r.memory for r in rounds if r.memory]
        return replace(first, rounds=len(rounds), load_s=round(float(np.mean([r.load_s or 0.0 for r in rounds])), 3),
                       memory=merge_metrics(memory) if first.memory and memory else None,
                       scenarios={name: ScenarioResult.merge(found) for name, found in by_name.items()})

    def noisiest(self) -> tuple[str, float] | None:
        """The scenario whose rounds disagree most, and by how much (%)."""
        spreads = [(name, s.metrics.get("round_spread_pct", 0.0)) for name, s in self.scenarios.items()]
        return max(spreads, key=lambda item: item[1], default=None)

    def flat(self) -> dict[str, Any]:
        """Flat `group.metric` keys: `single_stream.latency_ms_p90`, `fidelity.cos_min`, `memory.peak_rss_mb`,
        `task.NAME.METRIC`, and the summaries scenarios declare (`generation.ttft_ms_p50`)."""
        out: dict[str, Any] = {}
        for name, measured in self.scenarios.items():
            out[f"{name}.valid"] = measured.valid
            for key, value in measured.metrics.items():
                out[f"{name}.{key}"] = value
        for group in ("fidelity", "memory", "adaptive"):
            for key, value in (getattr(self, group) or {}).items():
                out[f"{group}.{key}"] = value
        for task in self.task:
            if task.value is not None:
                out[f"task.{task.name}.{task.metric}"] = task.value
        out.update(self.summary())
        return out

    def summary(self) -> dict[str, Any]:
        """Headline figures that scenarios declare under a prefix (`Scenario.summary`), whichever measured them."""
        out = {}
        for name in registry.SCENARIOS:
            measured = self.scenarios.get(name)
            if measured is None:
                continue
            for prefix, key, source in registry.load(registry.SCENARIOS, name).summary:
                if measured.metrics.get(source) is not None:
                    out[f"{prefix}.{key}"] = measured.metrics[source]
        return out

    def figures(self) -> dict[str, float]:
        """The numeric flat figures, what decisions rank and constrain."""
        return {k: v for k, v in self.flat().items() if _number(v)}

    # -- the store's row mapping ------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        """The `variants` row (JSON columns serialised); scenarios go to `measurements` and `samples`."""
        row = {"name": self.name, "runtime": self.runtime, "precision": self.precision, "shape": self.shape,
               "knobs_json": json.dumps(self.knobs), "status": self.status, "error": self.error,
               "error_detail": self.error_detail, "load_s": self.load_s, "kind": self.kind, "pipeline": self.pipeline,
               "pipeline_json": _dumps(self.pipeline_config),
               "build_json": json.dumps({k: getattr(self, k) for k in _BUILD}
                                        | {"passes": [p.as_dict() for p in self.passes], "rounds": self.rounds})}
        row |= {f"{k}_json": _dumps(getattr(self, k)) for k in _JSON_COLUMNS}
        row["task_json"] = _dumps([t.as_dict() for t in self.task])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any], scenarios: dict[str, ScenarioResult]) -> VariantResult:
        build = _loads(row.get("build_json")) or {}
        return cls(name=row["name"], runtime=row["runtime"], precision=row["precision"], shape=row["shape"],
                   knobs=json.loads(row["knobs_json"]), kind=row.get("kind"), pipeline=row.get("pipeline"),
                   pipeline_config=_loads(row.get("pipeline_json")), status=row["status"], error=row.get("error"),
                   error_detail=row.get("error_detail"), fidelity=_loads(row.get("fidelity_json")),
                   memory=_loads(row.get("memory_json")), session_info=_loads(row.get("session_info_json")),
                   load_s=row.get("load_s"), task=_loads(row.get("task_json")) or [], scenarios=scenarios,
                   passes=build.get("passes") or [], kept_layers=build.get("kept_layers"),
                   pass_report=build.get("pass_report"), artifact=build.get("artifact"),
                   pruned=bool(build.get("pruned")), confirmed=bool(build.get("confirmed")),
                   batch_size=build.get("batch_size"),
                   estimates=build.get("estimates"), rounds=build.get("rounds") or 1, adaptive=build.get("adaptive"),
                   node=_loads(row.get("node_json")), device=build.get("device") or "cpu",
                   payload=_loads(row.get("payload_json")))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantResult:
        """A variant written as plain data (tests, other tools): scenarios as {name: {valid, metrics, ...}}."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "scenarios"}
        scenarios = {name: s if isinstance(s, ScenarioResult) else ScenarioResult(
            name, s.get("valid", True), s.get("invalid_reason"), s.get("mode", ""), dict(s.get("metrics") or {}),
            s.get("loadgen") or {}) for name, s in (data.get("scenarios") or {}).items()}
        return cls(**{"precision": "fp32", "shape": "dynamic", **values}, scenarios=scenarios)


@dataclass
class RunRecord:
    """A stored run. `kind` is the kind of model its variants ran (every variant of a run shares it)."""

    run_id: int
    model: str
    config: dict[str, Any]
    variants: list[VariantResult] = field(default_factory=list)
    created_at: str = ""
    finished_at: str | None = None
    status: str = "complete"
    quick: bool = True
    environment: dict[str, Any] = field(default_factory=dict)
    workload: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return next((v.kind for v in self.variants), "predict")

    @property
    def ok(self) -> list[VariantResult]:
        return [v for v in self.variants if v.ok]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        variants = [v if isinstance(v, VariantResult) else VariantResult.from_dict(v) for v in data.get("variants", [])]
        return cls(**{"model": "model", "config": {}, **{k: v for k, v in data.items() if k in known and k != "variants"}},
                   variants=variants)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
