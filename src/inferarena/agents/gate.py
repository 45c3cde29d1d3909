"""The gate of AgentDropoutV2 (Wang et al., arXiv 2602.23258): every message is reviewed before the
other agents may read it, and comes out as pass, rectify (with feedback, while attempts remain) or
reject (removed from everyone's context).

    gate = Gate(GateSettings(retries=2), rectify=True, auditor=None)
    verdict = gate.review(task, agent, text, attempt=0)   # Verdict(action="rectify", feedback="You wrote ...")

The agent's checks run cheapest first (the order its workflow lists them) and stop at the first that
fails: a message without an answer line never costs an auditor call. `rectify=False` is the
reject-only ablation: one attempt, then reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferarena import registry
from inferarena.agents.config import AgentConfig, GateSettings
from inferarena.agents.tasks import Task
from inferarena.agents.verifiers import Check, Verifier


@dataclass
class GateContext:
    """What a verifier may read besides the message: the agent's config, the auditor, sandbox limits.
    Never the task's answer or hidden tests."""

    agent: AgentConfig
    auditor: Any = None
    sandbox_timeout_s: float = 5.0


@dataclass
class Verdict:
    action: str  # pass | rectify | reject
    score: float  # the lowest score of the checks that ran
    feedback: str | None = None
    checks: list[Check] = field(default_factory=list)


class Gate:
    def __init__(self, settings: GateSettings, rectify: bool = True, auditor: Any = None, sandbox_timeout_s: float = 5.0,
                 verifiers: dict[str, Verifier] | None = None):
        self.settings, self.rectify, self.auditor, self.sandbox_timeout_s = settings, rectify, auditor, sandbox_timeout_s
        self.verifiers = verifiers if verifiers is not None else {}

    def verifier(self, name: str) -> Verifier:
        if name not in self.verifiers:
            self.verifiers[name] = registry.load(registry.VERIFIERS, name)()
        return self.verifiers[name]

    def review(self, task: Task, agent: AgentConfig, text: str, attempt: int = 0) -> Verdict:
        """`attempt`: how many times this message was already sent back (0 for a first reply)."""
        ctx = GateContext(agent, self.auditor, self.sandbox_timeout_s)
        checks: list[Check] = []
        for name in agent.checks:
            check = self.verifier(name).check(task, text, ctx)
            checks.append(check)
            if check.score < self.settings.pass_threshold:
                break
        lowest = min((c.score for c in checks), default=1.0)
        failed = next((c for c in checks if c.score < self.settings.pass_threshold), None)
        if failed is None:
            return Verdict("pass", lowest, None, checks)
        retries = self.settings.retries if self.rectify else 0
        action = "rectify" if attempt < retries else "reject"
        return Verdict(action, lowest, failed.feedback, checks)
