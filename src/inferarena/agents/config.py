"""A workflow as typed, validated YAML, and the settings an `agents` run is measured with.

Example (the built-in `debate-math`, shortened):

    name: debate-math
    answer: number            # what the aggregator extracts: a number, or code
    simultaneous: true        # agents of one round see only earlier rounds
    rounds: 2
    agents:
      - {name: solver1, role: solver, system: "...", sees: [solver1, solver2, solver3],
         checks: [format, arithmetic, auditor]}
    aggregator: {rule: majority, reads: [solver1, solver2, solver3]}
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from inferarena import registry
from inferarena.agents.arms import Arm
from inferarena.config import CostConfig, EnergyConfig, config_error
from inferarena.errors import ConfigError

BUILTIN = Path(__file__).parent / "workflows"
ARMS = tuple(arm.value for arm in Arm)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="Unique name; others' `sees` use it.")
    role: str = Field(description="What it does (solver, coder, reviewer...), shown in tables.")
    system: str = Field(description="Its system prompt.")
    model: str | None = Field(None, description="A generative variant (llama_cpp/q4_1) or an http(s):// endpoint; "
                              "default: the run's --variants (each is measured in turn).")
    sees: list[str] = Field(default_factory=list, description="Agents whose latest surviving message it reads.")
    checks: list[str] = Field(default_factory=list, description="Verifiers its messages pass through when the arm "
                              "gates (registry.VERIFIERS), cheapest first.")
    pattern: str | None = Field(None, description="The `regex` verifier's pattern its messages must match.")
    json_schema: dict | None = Field(None, description="The `json` verifier's JSON Schema its messages must fit.")
    max_tokens: int = Field(160, ge=1, le=4096, description="Completion tokens per message.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; each call is seeded.")
    top_k: int | None = Field(None, ge=0, description="Top-k sampling; default: the model's recommended (a bundled "
                              "model's), else 40.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Nucleus sampling; default: the model's, else 0.95.")
    repeat_penalty: float | None = Field(None, ge=1.0, le=2.0, description="llama.cpp's repetition penalty over the "
                                         "last 64 tokens; default: the model's, else 1.0 (none).")


class AggregatorConfig(_Strict):
    rule: Literal["majority", "last", "judge"] = Field(
        "majority", validation_alias=AliasChoices("rule", "kind"),  # `kind:` is how workflows named it before
        description="majority: the most common answer of the messages it reads; last: the last surviving "
        "message of the first agent it reads (a coder's final code); judge: the named agent reads them and answers.")
    reads: list[str] = Field(description="Agents whose final surviving messages it reads.")
    judge: str | None = Field(None, description="With rule judge: the agent that decides.")


class WorkflowConfig(_Strict):
    name: str
    description: str = ""
    answer: Literal["number", "code"] = Field("number", description="What a final answer is: a number, or Python code.")
    simultaneous: bool = Field(True, description="Agents of one round see only earlier rounds' messages (a debate); "
                               "false: also those written earlier in the same round (a pipeline).")
    rounds: int = Field(2, ge=1, le=10)
    agents: list[AgentConfig] = Field(min_length=1)
    aggregator: AggregatorConfig

    @model_validator(mode="after")
    def _names(self) -> "WorkflowConfig":
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names repeat: {', '.join(names)}")
        for agent in self.agents:
            for other in agent.sees:
                if other not in names:
                    raise ValueError(f"agent {agent.name!r} sees {other!r}, which is not an agent")
            for check in agent.checks:
                if check not in registry.VERIFIERS:
                    raise ValueError(f"agent {agent.name!r}: unknown check {check!r}; choose from "
                                     f"{', '.join(registry.VERIFIERS)}")
        for other in [*self.aggregator.reads, *([self.aggregator.judge] if self.aggregator.judge else [])]:
            if other not in names:
                raise ValueError(f"the aggregator reads {other!r}, which is not an agent")
        if self.aggregator.rule == "judge" and not self.aggregator.judge:
            raise ValueError("an aggregator with rule judge names its `judge` agent")
        return self

    def agent(self, name: str) -> AgentConfig:
        return next(a for a in self.agents if a.name == name)

    @property
    def actors(self) -> list[AgentConfig]:
        """The agents that speak in rounds (a judge speaks once, at the end)."""
        return [a for a in self.agents if a.name != self.aggregator.judge]


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN.glob("*.yaml"))


def load_workflow(spec: str) -> WorkflowConfig:
    """A built-in name (debate-math, code-review) or the path of a workflow YAML."""
    path = BUILTIN / f"{spec}.yaml" if spec in builtin_names() else Path(spec)
    if not path.is_file():
        raise ConfigError(f"no workflow {spec!r}", f"name a built-in ({', '.join(builtin_names())}) or a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"workflow {path} is not valid YAML ({' '.join(str(exc).split())})", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"workflow {path} must hold a mapping", "see the built-ins in inferarena/agents/workflows")
    try:
        return WorkflowConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, f"workflow {path.name}") from None


class GateSettings(_Strict):
    """AgentDropoutV2's knobs, stored with the run."""

    retries: int = Field(2, ge=0, le=5, description="Rectify attempts before a flawed message is rejected "
                         "(reject-only uses 0).")
    pass_threshold: float = Field(1.0, ge=0.0, le=1.0, description="A check passes when its score (share of "
                                  "equations right, tests passed, indicators not triggered) reaches this.")
    top_k: int = Field(3, ge=1, le=10, description="Indicators the auditor retrieves per message.")
    fallback: Literal["best", "none"] = Field("best", description="When every message the aggregator reads was "
                                              "rejected: best restores the best-scoring one; none leaves the task "
                                              "unanswered (counted wrong).")
    auditor_tokens: int = Field(32, ge=4, le=512, description="Completion tokens of one auditor verdict.")


class AgentsConfig(_Strict):
    """One `inferarena agents` run: the workflow, tasks, arms, model variants and settings."""

    workflow: str = "debate-math"
    tasks: str = Field("arithmetic", description="arithmetic, code, gsm8k, or a JSONL file.")
    n: int = Field(50, ge=1, le=10_000, description="Tasks measured per arm.")
    dev_n: int = Field(8, ge=1, le=1000, description="Development tasks (other seeds): mining indicators, dropout.")
    arms: list[Arm] = Field(default_factory=lambda: list(Arm))
    variants: list[str] = Field(default_factory=lambda: ["llama_cpp"])  # the model file's own GGUF type
    model: str = Field("qwen-coder-1.5b", description="The model the variants are built from.")
    endpoint: str | None = None
    endpoint_model: str | None = None
    seed: int = 0
    quick: bool = False
    threads: int | None = Field(None, ge=1)
    context: int = Field(2048, ge=256, description="KV cache tokens of a llama.cpp agent model.")
    max_tokens: int | None = Field(None, ge=1, description="Overrides every agent's max_tokens.")
    dropout_candidates: int = Field(6, ge=1, le=100, description="Removals the dropout arm tries on the dev split.")
    parallel_tasks: int = Field(2, ge=1, le=8, description="Tasks run at once, their model calls decoded together "
                                "(agents/pool.py); 1: one task after another.")
    share_replies: bool = Field(True, description="A call already decoded in this run (same model, prompt, "
                                "settings and seed) is taken from the run's folder and charged its measured cost.")
    gate: GateSettings = Field(default_factory=GateSettings)
    sandbox_timeout_s: float = Field(5.0, gt=0, le=120, description="Wall-clock limit of one sandboxed code run.")
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    cost: CostConfig = Field(default_factory=CostConfig)

    # How fast, not what: left out of the keys that decide whether a stored run, task or reply is reused.
    SPEED_ONLY: ClassVar[frozenset[str]] = frozenset({"parallel_tasks", "share_replies"})

    def decisive(self) -> dict:
        """The settings that decide the outcomes, as JSON: what the run's and the task logs' keys hash."""
        return self.model_dump(mode="json", exclude=set(self.SPEED_ONLY))

    @model_validator(mode="after")
    def _arms(self) -> "AgentsConfig":
        if not self.arms:
            raise ValueError("name at least one arm")
        return self

    @model_validator(mode="after")
    def _task_tokens(self) -> "AgentsConfig":
        """A task set that needs longer messages than the workflows give (GSM8K: `tasks.MAX_TOKENS`) sets
        max_tokens when the user did not, outside --quick; stored so, it keys the run like an explicit one."""
        from inferarena.agents.tasks import MAX_TOKENS

        if self.max_tokens is None and not self.quick and self.tasks in MAX_TOKENS:
            self.max_tokens = MAX_TOKENS[self.tasks]
        return self
