"""The LLM auditor and its pool of failure indicators (AgentDropoutV2's retrieval-augmented audit).

Mining, offline, on the development split: the messages of the baseline's failed tasks are labelled
by the deterministic verifiers (no answer line, a wrong arithmetic step, code that fails its public
test...), embedded with MiniLM and clustered (k-means); each cluster becomes one indicator: a name
and definition from the flaw most of its messages share, its trigger (the message nearest the
cluster's centre, cut to 240 characters), and a suggestion. The paper has an LLM summarise each
cluster; the 135M bundled model cannot write a useful summary, so the summary here is the verifiers'
own label, which is exact. Retrieval: the `top_k` indicators whose trigger embeddings are nearest a
message. The audit: the agent's own model reads the indicators and the message and answers PASS or
FLAG; a FLAG sends the indicator's suggestion back as feedback.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from inferarena.agents.verifiers import Check

# What each verifier's flaw category means, and what to tell the agent.
CATEGORIES = {
    "no final answer line": ("The reply never states its final number on an 'Answer: N' line.",
                             'End with a line "Answer: N".'),
    "an arithmetic step is wrong": ("An equation in the reply does not hold, so the result built on it is wrong.",
                                    "Recompute every step and check each equation before answering."),
    "no parsable code": ("The reply holds no Python code that parses.", "Reply with one complete ```python block."),
    "fails a test": ("The code runs but fails a test of the task.", "Trace the failing test by hand and fix the logic."),
    "too slow": ("The code does not finish in time (a loop that never ends).", "Make sure every loop terminates."),
    "blocked by the sandbox": ("The code touches files, the network or processes.",
                               "Use only the function's arguments; no I/O."),
    "wrong final answer": ("The reply looks well formed but reaches the wrong result (a misread quantity or "
                           "operation).", "Reread the problem: list each quantity and what happens to it, in order."),
}


@dataclass
class Indicator:
    name: str
    definition: str
    trigger: str
    suggestion: str
    support: int  # failed messages in its cluster

    def as_dict(self) -> dict:
        return asdict(self)


class IndicatorPool:
    def __init__(self, indicators: list[Indicator], embeddings: np.ndarray, embed):
        self.indicators, self.embeddings, self.embed = indicators, embeddings, embed

    def __len__(self) -> int:
        return len(self.indicators)

    def retrieve(self, text: str, k: int) -> list[Indicator]:
        if not self.indicators:
            return []
        query = self.embed([text])[0]
        order = np.argsort(-(self.embeddings @ query))[:k]
        return [self.indicators[i] for i in order]


def mine(failed: list[tuple[str, str | None]], embed, max_indicators: int = 6, seed: int = 0) -> IndicatorPool:
    """`failed`: (message text, flaw category or None) from the baseline's failed dev tasks."""
    from scipy.cluster.vq import kmeans2

    if not failed:
        return IndicatorPool([], np.zeros((0, 384), np.float32), embed)
    texts = [t for t, _ in failed]
    vectors = embed(texts)
    k = min(max_indicators, len(texts))
    if k > 1:
        _, labels = kmeans2(vectors.astype(np.float64), k, seed=seed, minit="++")
    else:
        labels = np.zeros(len(texts), int)
    indicators, centres = [], []
    for cluster in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == cluster)
        category = Counter(failed[i][1] or "wrong final answer" for i in members).most_common(1)[0][0]
        centre = vectors[members].mean(axis=0)
        medoid = members[int(np.argmax(vectors[members] @ centre))]
        definition, suggestion = CATEGORIES.get(category, (category, "Fix it."))
        trigger = " ".join(texts[medoid].split())[:240]
        indicators.append(Indicator(category, definition, trigger, suggestion, len(members)))
        centres.append(vectors[medoid])
    return IndicatorPool(indicators, np.stack(centres), embed)


AUDIT_SYSTEM = ("You audit one message written by an agent solving a task. Known failure patterns are listed. "
                "If the message shows one of them, reply 'FLAG <number>: <one short reason>'. Otherwise reply 'PASS'.")


class LlmAuditor:
    """Audits with the agent's own model, shown the indicators nearest the message."""

    def __init__(self, model, pool: IndicatorPool, top_k: int, max_tokens: int):
        self.model, self.pool, self.top_k, self.max_tokens = model, pool, top_k, max_tokens

    def audit(self, task, agent, text: str) -> Check:
        found = self.pool.retrieve(text, self.top_k)
        if not found:  # nothing mined to audit against: no call
            return Check("auditor", 1.0)
        listed = "\n".join(f"{i}. {ind.name}: {ind.definition} Example: \"{ind.trigger[:160]}\""
                           for i, ind in enumerate(found, 1))
        user = f"Task: {task.question}\n\nFailure patterns:\n{listed}\n\nMessage to audit:\n{text.strip()}\n\nVerdict:"
        reply = self.model.chat([{"role": "system", "content": AUDIT_SYSTEM}, {"role": "user", "content": user}],
                                self.max_tokens, 0.0, 0)
        verdict = reply.text.strip()
        flagged = re.match(r"\W*flag\b", verdict, re.IGNORECASE) is not None
        number = re.search(r"flag\s*#?(\d+)", verdict, re.IGNORECASE)
        chosen = found[min(int(number.group(1)), len(found)) - 1] if number and int(number.group(1)) >= 1 else found[0]
        spent = {"calls": 1, "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                 "seconds": reply.seconds}
        if not flagged:
            return Check("auditor", 1.0, **spent)
        return Check("auditor", 0.0, f"An auditor flagged '{chosen.name}': {chosen.suggestion}", category=chosen.name,
                     **spent)
