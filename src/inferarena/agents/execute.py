"""One task through a workflow: rounds of agents reading each other's surviving messages, each message
optionally through the gate, then the aggregator's answer, scored against the task's answer.

In a simultaneous round every agent reads the same snapshot, so their first attempts are independent:
they are asked for in one `chat_many` per model (a llama.cpp model decodes them together), with the
seeds they would have had one by one; the gate then reviews each message in turn, as before.

Who speaks in which order, who reads what, and what the aggregator reads all come from the workflow's
YAML; a `Topology` removes agents or edges (the dropout arm). The gate (`gate.Gate`) decides per
message: pass, rectify (the agent answers again with the feedback) or reject (the others never see it).
Every LLM call's tokens and time are counted per agent.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from inferarena.agents.arms import Usage
from inferarena.agents.chat import ChatModel, ChatRequest, Messages, sampling_of
from inferarena.agents.config import AgentConfig, WorkflowConfig
from inferarena.agents.sandbox import run_tests
from inferarena.agents.tasks import Task
from inferarena.agents.verifiers import extract_code, final_number


@dataclass(frozen=True)
class Topology:
    """What the dropout arm removed from the communication graph: agents, and edges (reader, speaker)."""

    removed_agents: frozenset[str] = frozenset()
    removed_edges: frozenset[tuple[str, str]] = frozenset()

    def speaks(self, agent: str) -> bool:
        return agent not in self.removed_agents

    def reads(self, reader: str, speaker: str) -> bool:
        return speaker not in self.removed_agents and (reader, speaker) not in self.removed_edges

    def describe(self) -> list[str]:
        return ([f"agent {a}" for a in sorted(self.removed_agents)]
                + [f"edge {s}->{r}" for r, s in sorted(self.removed_edges)])


@dataclass
class Message:
    agent: str
    round: int
    text: str
    status: str  # kept | rectified (kept after feedback) | rejected | restored (the fallback brought it back)
    attempts: int = 1
    score: float = 1.0  # the gate's lowest check score on its last attempt (1.0 when ungated)
    flaws: list[str] = field(default_factory=list)  # categories the gate found, over every attempt


@dataclass
class TaskRun:
    task: Task
    answer: str | None
    correct: bool
    messages: list[Message]
    usage: dict[str, Usage]  # by agent name, plus "auditor" when the gate called one
    seconds: float
    fallback: bool = False  # the aggregator's messages were all rejected and one was restored

    @property
    def total(self) -> Usage:
        out = Usage()
        for usage in self.usage.values():
            out.add(usage)
        return out


def seed_of(*parts) -> int:
    """A stable 31-bit seed for one call, the same in every arm (same task, agent, round, attempt)."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


def prompt(workflow: WorkflowConfig, agent: AgentConfig, task: Task, context: list[tuple[str, str]],
           own: str | None = None) -> Messages:
    """The agent's system prompt, the task, and the surviving messages it reads. `own`: its own latest
    surviving message, where it reads itself; the conversation then goes on from it, as in multi-agent debate
    (Du et al., 2023): the task, its reply, then the others' messages. That is also what a prompt cache
    reuses: the second round's prompt starts with the first round's prompt and reply."""
    text = task.question
    if task.kind == "code" and task.public_tests:
        text += "\nPublic tests:\n" + "\n".join(task.public_tests)
    quoted = "\n\n".join(f"[{name}]: {message.strip()}" for name, message in context)
    if own is None:
        if context:
            text += f"\n\nMessages so far:\n{quoted}\n\nTaking them into account where they help, give your reply."
        return [{"role": "system", "content": agent.system}, {"role": "user", "content": text}]
    follow = (f"Messages from the others so far:\n{quoted}\n\nTaking them into account where they help, give your "
              "reply again." if context else "Check your reply and give it again, corrected where it needs it.")
    return [{"role": "system", "content": agent.system}, {"role": "user", "content": text},
            {"role": "assistant", "content": own}, {"role": "user", "content": follow}]


def run_task(workflow: WorkflowConfig, task: Task, model_of: Callable[[str], ChatModel], gate=None,
             topology: Topology = Topology(), max_tokens: int | None = None, seed: int = 0) -> TaskRun:
    """Run `task` through the workflow. `model_of(agent name)` gives each agent's model; `gate` (or None,
    no gate) reviews every message before the others can read it."""
    started = time.perf_counter()
    usage: dict[str, Usage] = {}
    latest: dict[str, Message] = {}  # each agent's latest surviving message
    rejected: dict[str, list[Message]] = {}
    messages: list[Message] = []
    actors = [a for a in workflow.actors if topology.speaks(a.name)]

    def request(agent: AgentConfig, chat: Messages, round_: int, attempt: int) -> ChatRequest:
        return ChatRequest(chat, max_tokens or agent.max_tokens, agent.temperature,
                           seed_of(seed, task.id, agent.name, round_, attempt), agent.top_k, agent.top_p,
                           agent.repeat_penalty)

    def call(agent: AgentConfig, chat: Messages, round_: int, attempt: int) -> str:
        r = request(agent, chat, round_, attempt)
        reply = model_of(agent.name).chat(r.messages, r.max_tokens, r.temperature, r.seed, **sampling_of(r))
        usage.setdefault(agent.name, Usage()).reply(reply)
        return reply.text

    def reading(agent: AgentConfig, visible: dict[str, Message]) -> Messages:
        context = [(name, visible[name].text) for name in agent.sees
                   if name in visible and name != agent.name and topology.reads(agent.name, name)]
        own = visible[agent.name].text if agent.name in agent.sees and agent.name in visible else None
        return prompt(workflow, agent, task, context, own)

    for round_ in range(workflow.rounds):
        snapshot = dict(latest)
        first: dict[str, tuple[Messages, str]] = {}
        if workflow.simultaneous:
            chats = {agent.name: reading(agent, snapshot) for agent in actors}
            for agent in actors:
                usage.setdefault(agent.name, Usage())
            # One chat_many per model the actors share (by identity), their seeds as one by one.
            groups: dict[int, tuple[ChatModel, list[AgentConfig]]] = {}
            for agent in actors:
                model = model_of(agent.name)
                groups.setdefault(id(model), (model, []))[1].append(agent)
            for model, members in groups.values():
                replies = model.chat_many([request(a, chats[a.name], round_, 0) for a in members])
                for agent, reply in zip(members, replies):
                    usage[agent.name].reply(reply)
                    first[agent.name] = (chats[agent.name], reply.text)
        for agent in actors:
            if agent.name in first:
                chat, text = first[agent.name]
            else:
                chat = reading(agent, latest)
                text = call(agent, chat, round_, 0)
            spent = usage.setdefault(agent.name, Usage())
            spent.messages += 1
            message = Message(agent.name, round_, text, "kept")
            if gate is not None and agent.checks:
                message = _gated(gate, task, agent, chat, text, round_, call, usage)
            messages.append(message)
            if message.status == "rejected":
                spent.rejected += 1
                rejected.setdefault(agent.name, []).append(message)
            else:
                latest[agent.name] = message

    answer, fallback = _aggregate(workflow, task, latest, rejected, topology, gate, model_of, usage, max_tokens, seed,
                                  messages)
    correct = score(task, answer)
    return TaskRun(task, answer, correct, messages, usage, time.perf_counter() - started, fallback)


def _gated(gate, task, agent, chat, text, round_, call, usage) -> Message:
    """Rectify or reject: the gate reviews each attempt; feedback goes back to the agent while attempts remain."""
    flaws: list[str] = []
    attempt = 0
    while True:
        verdict = gate.review(task, agent, text, attempt)
        for check in verdict.checks:
            if check.calls:
                usage.setdefault("auditor", Usage()).charge(check.calls, check.prompt_tokens, check.completion_tokens,
                                                            check.seconds)
        flaws += [c.category for c in verdict.checks if c.category and c.score < gate.settings.pass_threshold]
        if verdict.action == "pass":
            return Message(agent.name, round_, text, "rectified" if attempt else "kept", attempt + 1, verdict.score, flaws)
        if verdict.action == "reject":
            return Message(agent.name, round_, text, "rejected", attempt + 1, verdict.score, flaws)
        attempt += 1
        usage.setdefault(agent.name, Usage()).rectify_rounds += 1
        chat = [*chat, {"role": "assistant", "content": text},
                {"role": "user", "content": f"A checker found a problem: {verdict.feedback} Reply again, corrected, "
                                            "in the same format."}]
        text = call(agent, chat, round_, attempt)


def _aggregate(workflow, task, latest, rejected, topology, gate, model_of, usage, max_tokens, seed, messages):
    """The answer from what the aggregator reads; when every such message was rejected, the fallback
    (`best`) restores the best-scoring rejected one so the pipeline still answers."""
    spec = workflow.aggregator
    reads = [name for name in spec.reads if topology.speaks(name)]
    found = {name: latest[name] for name in reads if name in latest}
    fallback = False
    if not found and gate is not None and gate.settings.fallback == "best":
        candidates = [m for name in reads for m in rejected.get(name, [])]
        if candidates:
            best = max(candidates, key=lambda m: (m.score, m.round))
            restored = Message(best.agent, best.round, best.text, "restored", best.attempts, best.score, best.flaws)
            messages.append(restored)
            found, fallback = {best.agent: restored}, True
    if not found:
        return None, fallback
    if spec.rule == "last":
        return next(found[name].text for name in reads if name in found), fallback
    if spec.rule == "judge":
        judge = workflow.agent(spec.judge)
        context = [(name, message.text) for name, message in found.items()]
        chat = prompt(workflow, judge, task, context)
        tokens = max_tokens or judge.max_tokens
        reply = model_of(judge.name).chat(chat, tokens, judge.temperature, seed_of(seed, task.id, judge.name, "judge"),
                                          top_k=judge.top_k, top_p=judge.top_p, repeat_penalty=judge.repeat_penalty)
        spent = usage.setdefault(judge.name, Usage())
        spent.reply(reply)
        spent.messages += 1
        messages.append(Message(judge.name, workflow.rounds, reply.text, "kept"))
        return reply.text, fallback
    return majority([m.text for m in found.values()], workflow.answer), fallback


def majority(texts: list[str], answer: str) -> str | None:
    """The most common final number (ties: the first given); for code, the first text."""
    if answer == "code":
        return texts[0] if texts else None
    numbers = [n for n in (final_number(t) for t in texts) if n is not None]
    if not numbers:
        return None
    counts = Counter(numbers)
    best = max(counts.values())
    winner = next(n for n in numbers if counts[n] == best)
    return f"Answer: {winner:g}"


def score(task: Task, answer: str | None, timeout_s: float = 5.0) -> bool:
    """Right or wrong against the task's answer (numbers) or its hidden tests (code, in the sandbox)."""
    if answer is None:
        return False
    if task.kind == "code":
        code = extract_code(answer)
        return code is not None and run_tests(code, list(task.tests), timeout_s=timeout_s).ok
    value = final_number(answer)
    return value is not None and task.answer is not None and math.isclose(value, task.answer, rel_tol=1e-9, abs_tol=1e-9)
