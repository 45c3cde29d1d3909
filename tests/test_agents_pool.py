"""agents/pool.py: tasks run at once with their calls decoded together, and replies shared between arms,
each task charged what its replies cost."""

from __future__ import annotations

import threading
import time

import pytest
from test_agents import debate, models_for, perfect, scripted, task  # noqa: F401 - perfect is a fixture

from inferarena.agents.chat import ChatRequest, Reply, ScriptedChat
from inferarena.agents.config import GateSettings
from inferarena.agents.execute import run_task
from inferarena.agents.gate import Gate
from inferarena.agents.pool import ReplyStore, TaskPool, request_key


class Recording(ScriptedChat):
    """A scripted model that records the size of every chat_many and takes 10 ms a call."""

    def __init__(self, inner: ScriptedChat):
        super().__init__(inner.script)
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def chat_many(self, requests: list[ChatRequest]) -> list[Reply]:
        with self.lock:
            self.batches.append(len(requests))
        time.sleep(0.01)
        return [Reply(r.text, r.prompt_tokens, r.completion_tokens, 0.01 / len(requests), r.truncated)
                for r in super().chat_many(requests)]


def runs_with(k, store, workflow, chat, gate=None, tasks=None):
    pool = TaskPool(k, None, store)
    wrapped = pool.wrap(chat)
    tasks = tasks or [task(10 + i, i) for i in range(5)]
    out = {}
    for index, run, charge in pool.run(tasks, lambda t: run_task(workflow, t, lambda name: wrapped, gate)):
        out[run.task.id] = (index, run, charge)
    return out


def test_two_tasks_at_once_decode_together_and_answer_as_one_by_one(perfect):  # noqa: F811
    workflow = debate(rounds=2)
    alone_chat = Recording(scripted(lambda agent, answer, attempt: agent == "s2"))
    models_for(workflow, alone_chat)
    alone = runs_with(1, None, workflow, alone_chat)
    both_chat = Recording(alone_chat)
    both = runs_with(2, None, workflow, both_chat)
    assert set(alone_chat.batches) == {3}  # a round's three agents, one task at a time
    assert max(both_chat.batches) == 6  # two tasks' rounds in one batch
    assert len(both_chat.batches) < len(alone_chat.batches)
    for tid, (_, run, charge) in alone.items():
        other = both[tid][1]
        assert [m.text for m in run.messages] == [m.text for m in other.messages]
        assert run.correct == other.correct and charge.seconds > 0
    # every batch's interval is shared out: the charges add up to about the pool's wall time
    assert sum(c.seconds for _, _, c in both.values()) == pytest.approx(len(both_chat.batches) * 0.01, rel=0.5, abs=0.05)


def test_gated_calls_and_the_auditor_batch_too(perfect):  # noqa: F811
    workflow = debate(rounds=1)
    chat = Recording(scripted(lambda agent, answer, attempt: agent == "s3" and attempt == 0))
    models_for(workflow, chat)
    gate = Gate(GateSettings(retries=1), rectify=True, verifiers=perfect)
    out = runs_with(3, None, workflow, chat, gate)
    assert all(run.correct for _, run, _ in out.values())
    assert 9 in chat.batches  # three tasks' first round in one batch
    assert 3 in chat.batches  # s3's three rectify calls, one per task, together


def test_a_later_arm_takes_shared_replies_and_is_charged_their_measured_cost(tmp_path, perfect):  # noqa: F811
    workflow = debate(rounds=1)
    chat = Recording(scripted(lambda agent, answer, attempt: False))
    models_for(workflow, chat)
    path = tmp_path / "replies.jsonl"
    first = runs_with(2, ReplyStore(path), workflow, chat)
    assert path.is_file() and len(path.read_text().splitlines()) == 15  # 5 tasks x 3 agents
    assert all(c.shared == 0 for _, _, c in first.values())
    calls = len(chat.batches)
    again = runs_with(2, ReplyStore(path), workflow, chat)  # a second arm's job: a fresh process's store
    assert len(chat.batches) == calls  # nothing decoded again
    for tid, (_, run, charge) in again.items():
        assert charge.shared == 3
        assert charge.seconds == pytest.approx(first[tid][2].seconds)
        assert [m.text for m in run.messages] == [m.text for m in first[tid][1].messages]
    # another seed is another call
    other = ChatRequest([{"role": "user", "content": "q"}], 8, 0.7, 1)
    assert request_key(chat, other) != request_key(chat, ChatRequest(other.messages, 8, 0.7, 2))


def test_a_line_cut_short_is_skipped(tmp_path):
    path = tmp_path / "replies.jsonl"
    store = ReplyStore(path)
    store.put([("k1", Reply("a", 1, 1, 0.5, False), 2.0)])
    with path.open("a") as out:
        out.write('{"key": "k2", "text": "b", "prom')
    again = ReplyStore(path)
    assert again.get("k1")[0].text == "a" and again.get("k1")[1] == 2.0 and again.get("k2") is None


def test_a_failing_task_stops_the_pool_and_is_raised(perfect):  # noqa: F811
    def script(messages, seed):
        if "ANSWER=12" in messages[-1]["content"]:
            raise RuntimeError("model crashed")
        return "Answer: 1"

    workflow = debate(rounds=1)
    chat = ScriptedChat(script)
    models_for(workflow, chat)
    with pytest.raises(RuntimeError, match="model crashed"):
        runs_with(2, None, workflow, chat)
