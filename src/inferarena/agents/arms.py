"""The arms of `inferarena agents`, one enum: what each run compares, by name, everywhere (config, jobs,
findings); and `ArmOutcome`, what an arm's stored result holds beyond its figures (`VariantResult.payload`).
Declarations only: the workflow kind imports them without importing any driver.

    baseline            no gate
    dropout             no gate, the communication graph the development phase pruned
    reject-only         the gate with no retries: a flawed message is removed at once
    rectify-or-reject   the gate with `retries` rectify attempts, then removal (AgentDropoutV2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from inferarena.agents.auditor import Indicator

if TYPE_CHECKING:
    from inferarena.agents.chat import Reply


class Arm(StrEnum):
    BASELINE = "baseline"
    DROPOUT = "dropout"
    REJECT_ONLY = "reject-only"
    RECTIFY_OR_REJECT = "rectify-or-reject"

    @property
    def gated(self) -> bool:
        """The gate reviews every message before the others read it."""
        return self in (Arm.REJECT_ONLY, Arm.RECTIFY_OR_REJECT)

    @property
    def rectifies(self) -> bool:
        """A flawed message goes back to its agent with feedback before it is removed."""
        return self is Arm.RECTIFY_OR_REJECT


@dataclass
class Usage:
    """What one agent (or the auditor) cost in one task: calls, tokens, seconds."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    messages: int = 0
    rejected: int = 0
    rectify_rounds: int = 0
    truncated: int = 0  # replies that stopped at max_tokens

    def charge(self, calls: int, prompt_tokens: int, completion_tokens: int, seconds: float, truncated: int = 0) -> None:
        """Count LLM calls: an agent's reply (one call) or the calls an auditor check made."""
        self.calls += calls
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.seconds += seconds
        self.truncated += truncated

    def reply(self, reply: "Reply") -> None:
        """Count one agent's reply."""
        self.charge(1, reply.prompt_tokens, reply.completion_tokens, reply.seconds, int(reply.truncated))

    def add(self, other: "Usage") -> None:
        for name in ("calls", "prompt_tokens", "completion_tokens", "seconds", "messages", "rejected", "rectify_rounds",
                     "truncated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


    @classmethod
    def of(cls, data: dict[str, Any]) -> "Usage":
        """From a stored payload (one written before `truncated` existed lacks it)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class TaskAnswer:
    """One test task's final answer in an arm (its last 120 characters), and whether it was right."""

    task: str
    correct: bool
    answer: str


@dataclass
class Pooling:
    """How an arm's job ran its tasks (agents/pool.py): how many at once, and how many replies (and the seconds
    they had cost) it took from the run's shared store instead of decoding them again."""

    parallel_tasks: int | None = None  # None: stored before the pool existed
    shared_replies_this_job: int = 0
    shared_replies_s_this_job: float = 0.0


@dataclass
class DropoutTry:
    """One removal the dropout search tried on the development split, and whether it kept it."""

    remove: str  # "agent solver3" or "edge solver1->solver2"
    dev_accuracy: float
    dev_tokens_per_task: float
    kept: bool


@dataclass
class DropoutSearch:
    """The dropout arm's greedy search: what it tried, what it removed, and the pruned graph's dev figures."""

    tried: list[DropoutTry]
    removed: list[str]  # Topology.describe() of the graph it kept
    dev_accuracy: float
    dev_tokens_per_task: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> "DropoutSearch":
        return cls([DropoutTry(**t) for t in data["tried"]], list(data["removed"]), data["dev_accuracy"],
                   data["dev_tokens_per_task"])


@dataclass
class Development:
    """The development phase of one model variant (agents.measure.develop): the baseline's accuracy and cost on
    the development split, the indicators the gated arms audit with (and their trigger embeddings), and the
    graph the dropout arm keeps. Saved beside the run (agents/checkpoint.py) and handed to each arm's job."""

    dev_tasks: int
    dev_accuracy: float
    dev_tokens_per_task: float
    indicators: list[Indicator] = field(default_factory=list)
    indicator_vectors: list[list[float]] = field(default_factory=list)
    removed_agents: list[str] = field(default_factory=list)
    removed_edges: list[tuple[str, str]] = field(default_factory=list)  # (reader, speaker)
    dropout: DropoutSearch | None = None
    embedder: str | None = None  # which MiniLM embedded the indicators, where any were mined
    # The stored MiniLM variant it loaded (agents.embed.stored_pick), for the arms' jobs to load the same one
    embedder_pick: list | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON, as saved and as keyed (an arm's task log is keyed over it)."""
        out = asdict(self)
        out["removed_edges"] = [list(e) for e in self.removed_edges]
        for name in ("embedder", "embedder_pick"):
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def of(cls, data: dict[str, Any]) -> "Development":
        return cls(data["dev_tasks"], data["dev_accuracy"], data["dev_tokens_per_task"],
                   [Indicator(**i) for i in data.get("indicators") or []], data.get("indicator_vectors") or [],
                   list(data.get("removed_agents") or []), [tuple(e) for e in data.get("removed_edges") or []],
                   DropoutSearch.of(data["dropout"]) if data.get("dropout") else None, data.get("embedder"),
                   data.get("embedder_pick"))

    def report(self, arm: Arm) -> dict[str, Any]:
        """What an arm's stored outcome says of the phase: its figures, and what that arm used of it."""
        out: dict[str, Any] = {"dev_tasks": self.dev_tasks, "dev_accuracy": self.dev_accuracy,
                               "dev_tokens_per_task": self.dev_tokens_per_task, "embedder": self.embedder}
        if arm.gated:
            out["indicators"] = [{"name": i.name, "support": i.support, "trigger": i.trigger} for i in self.indicators]
        if arm is Arm.DROPOUT:
            out["dropout"] = asdict(self.dropout) if self.dropout else None
        return out


@dataclass
class ArmOutcome:
    """What an arm's result holds beyond its figures, in `VariantResult.payload`: which arm on which model
    variant, what each agent cost, each task's answer, and the development phase the arm used."""

    arm: str
    variant: str  # the model variant the arm ran on (llama_cpp/q4_k_m, or an endpoint's URL)
    per_agent: dict[str, Usage] = field(default_factory=dict)  # agent (and the auditor) -> its cost over the tasks
    answers: list[TaskAnswer] = field(default_factory=list)  # in task order
    development: dict[str, Any] | None = None  # Development.report(arm): what the arm used of that phase
    pooling: Pooling = field(default_factory=Pooling)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, v) -> "ArmOutcome":
        """The arm's outcome; for an arm stored before the payload had its own column, rebuilt from where it
        was kept then (session_info and pass_report)."""
        if v.payload is not None:
            data = v.payload
        else:
            info = v.session_info or {}
            data = {"arm": v.pipeline or "", "variant": v.base, "per_agent": info.get("per_agent"),
                    "answers": info.get("answers"), "development": v.pass_report, "pooling": info.get("pooling")}
        return cls(data["arm"], data["variant"], {k: Usage.of(u) for k, u in (data.get("per_agent") or {}).items()},
                   [TaskAnswer(**a) for a in data.get("answers") or []], data.get("development"),
                   Pooling(**(data.get("pooling") or {})))
