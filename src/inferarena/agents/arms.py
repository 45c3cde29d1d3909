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
from typing import Any


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
class ArmOutcome:
    """What an arm's result holds beyond its figures, in `VariantResult.payload`: which arm on which model
    variant, what each agent cost, each task's answer, and the development phase the arm used."""

    arm: str
    variant: str  # the model variant the arm ran on (llama_cpp/q4_k_m, or an endpoint's URL)
    per_agent: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent -> agents.execute.Usage as a dict
    answers: list[dict[str, Any]] = field(default_factory=list)  # {"task", "correct", "answer"}, in task order
    development: dict[str, Any] | None = None  # dev accuracy and tokens; the indicators or the dropout search
    pooling: dict[str, Any] = field(default_factory=dict)  # tasks at once, replies shared (agents/pool.py)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, v) -> "ArmOutcome":
        """The arm's outcome; for an arm stored before the payload had its own column, rebuilt from where it
        was kept then (session_info and pass_report)."""
        if v.payload is not None:
            return cls(**v.payload)
        info = v.session_info or {}
        return cls(v.pipeline or "", v.base, info.get("per_agent") or {}, info.get("answers") or [], v.pass_report,
                   info.get("pooling") or {})
