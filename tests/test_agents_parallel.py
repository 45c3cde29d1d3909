"""Agents that decode together: `ChatModel.chat_many`, llama.cpp's batched generator behind `LlamaChat`, and
the workflow asking for a simultaneous round's first attempts in one `chat_many` per model (scripted agents
check the workflow; the bundled SmolLM2 checks that decoding together changes no greedy token)."""

from __future__ import annotations

import pytest
from test_agents import debate, models_for, scripted, task

from inferarena.agents.chat import ChatRequest, Reply, ScriptedChat
from inferarena.agents.config import WorkflowConfig
from inferarena.agents.execute import run_task, seed_of

SYSTEMS = [
    "You solve arithmetic word problems. Work step by step, writing each calculation as an equation such as "
    "12 + 5 = 17. End with a line \"Answer: N\" where N is a number.",
    "You are a careful math tutor. Solve the problem one operation at a time, writing every step as an "
    "equation like 7 * 3 = 21. Finish with \"Answer: N\".",
    "You check your work twice. Compute the result of the problem in short steps, each written as an equation "
    "(20 - 4 = 16). The last line must be \"Answer: N\".",
]
QUESTIONS = [
    "A baker makes 12 loaves in the morning and 17 in the afternoon. He sells 21. How many are left?",
    "Tom has 3 boxes of 8 pencils and gives away 5 pencils. How many pencils does he have?",
    "A train travels 60 km per hour for 3 hours, then 40 km per hour for 2 hours. How far does it go?",
]


class Recording(ScriptedChat):
    """A scripted model that remembers every chat_many call (its requests) and every single chat."""

    def __init__(self, script, truncate: bool = False):
        super().__init__(script)
        self.many: list[list[ChatRequest]] = []
        self.single: list[int] = []
        self.truncate = truncate

    def chat(self, messages, max_tokens, temperature, seed, **sampling):
        self.single.append(seed)
        reply = super().chat(messages, max_tokens, temperature, seed)
        reply.truncated = self.truncate
        return reply

    def chat_many(self, requests):
        self.many.append(list(requests))
        single = len(self.single)
        replies = super().chat_many(requests)
        del self.single[single:]  # the default chat_many's own chat calls are not single calls
        return replies


@pytest.fixture
def perfect(monkeypatch):
    from test_agents import Perfect

    from inferarena import registry

    monkeypatch.setitem(registry.VERIFIERS, "perfect", "test_agents:Perfect")
    return {"perfect": Perfect()}


def answer_one(messages, seed):
    return "Answer: 1"


def test_a_simultaneous_round_asks_once_per_model_with_the_seeds_of_one_by_one(perfect):
    workflow = debate(rounds=2)
    chat = Recording(answer_one)
    run = run_task(workflow, task(1), models_for(workflow, chat), None, seed=7)
    assert [len(c) for c in chat.many] == [3, 3] and chat.single == []
    for round_, call in enumerate(chat.many):
        assert [r.seed for r in call] == [seed_of(7, "t0", name, round_, 0) for name in ("s1", "s2", "s3")]
        assert all(r.max_tokens == 160 and r.temperature == 0.7 for r in call)
    second = chat.many[1][0].messages  # s1's second round: its own reply, then the others'
    assert second[2] == {"role": "assistant", "content": "Answer: 1"}
    assert "[s2]" in second[3]["content"] and "[s3]" in second[3]["content"] and "[s1]" not in second[3]["content"]
    assert run.correct and all(u.calls == 2 and u.messages == 2 for u in run.usage.values())


def test_actors_on_different_models_are_asked_per_model(perfect):
    workflow = debate(rounds=1)
    a, b = Recording(answer_one), Recording(answer_one)
    for agent in workflow.agents:
        agent.system = f"solve:{agent.name}"
    run_task(workflow, task(1), lambda name: b if name == "s2" else a, None)
    assert [[r.seed for r in c] for c in a.many] == [[seed_of(0, "t0", n, 0, 0) for n in ("s1", "s3")]]
    assert [[r.seed for r in c] for c in b.many] == [[seed_of(0, "t0", "s2", 0, 0)]]


def test_sequential_rounds_and_rectify_calls_stay_single(perfect):
    from inferarena.agents.config import GateSettings
    from inferarena.agents.gate import Gate

    names = ["s1", "s2", "s3"]
    pipeline = WorkflowConfig(name="p", simultaneous=False, rounds=1, agents=[
        {"name": n, "role": "solver", "system": "solve", "sees": names} for n in names],
        aggregator={"rule": "majority", "reads": names})
    chat = Recording(answer_one)
    run_task(pipeline, task(1), models_for(pipeline, chat), None)
    assert chat.many == [] and len(chat.single) == 3

    workflow = debate(rounds=1)
    wrong_first = scripted(lambda agent, answer, attempt: agent == "s2" and attempt == 0)
    chat = Recording(wrong_first.script)
    run = run_task(workflow, task(4), models_for(workflow, chat), Gate(GateSettings(retries=2), verifiers=perfect))
    assert [len(c) for c in chat.many] == [3] and chat.single == [seed_of(0, "t0", "s2", 0, 1)]
    assert [m.status for m in run.messages] == ["kept", "rectified", "kept"]


def test_the_order_replies_are_made_in_changes_nothing(perfect):
    """A model that makes a round's replies last to first (as a batch makes them all at once) leads to the
    very messages, gate verdicts and answers of one that makes them first to last."""
    import zlib

    from inferarena.agents.config import GateSettings
    from inferarena.agents.gate import Gate

    def errs(agent, answer, attempt):
        return zlib.crc32(f"{agent}/{answer:g}/{attempt}".encode()) % 100 < 40

    class Backwards(ScriptedChat):
        def chat_many(self, requests):
            return super().chat_many(requests[::-1])[::-1]

    workflow = debate(rounds=2)
    gate = Gate(GateSettings(retries=2), rectify=True, verifiers=perfect)
    forwards, backwards = scripted(errs), Backwards(scripted(errs).script)
    for i in range(6):
        a = run_task(workflow, task(20 + i, i), models_for(workflow, forwards), gate)
        b = run_task(workflow, task(20 + i, i), models_for(workflow, backwards), gate)
        assert [(m.agent, m.round, m.text, m.status, m.attempts) for m in a.messages] == \
               [(m.agent, m.round, m.text, m.status, m.attempts) for m in b.messages]
        assert a.answer == b.answer and {k: v.calls for k, v in a.usage.items()} == {k: v.calls for k, v in b.usage.items()}


def test_truncated_replies_are_counted(perfect):
    workflow = debate(rounds=2)
    run = run_task(workflow, task(1), models_for(workflow, Recording(answer_one, truncate=True)), None)
    assert {name: u.truncated for name, u in run.usage.items()} == dict.fromkeys(("s1", "s2", "s3"), 2)
    run = run_task(workflow, task(1), models_for(workflow, Recording(answer_one)), None)
    assert run.total.truncated == 0

    class Cut(Recording):
        def chat_many(self, requests):
            self.many.append(list(requests))
            return [Reply("Answer: 1", 1, r.max_tokens, 0.5, True) for r in requests]

    run = run_task(workflow, task(1), models_for(workflow, Cut(answer_one)), None)
    assert {name: (u.truncated, u.calls) for name, u in run.usage.items()} == dict.fromkeys(("s1", "s2", "s3"), (2, 2))
    assert run.total.truncated == 6 and run.total.seconds == pytest.approx(3.0)


def test_the_default_chat_many_is_chat_one_after_another():
    def script(messages, seed):
        return f"{messages[-1]['content']} seed {seed}"

    chat = ScriptedChat(script)
    requests = [ChatRequest([{"role": "user", "content": f"q{i}"}], 16, 0.7, 100 + i) for i in range(4)]
    assert chat.chat_many(requests) == [chat.chat(r.messages, r.max_tokens, r.temperature, r.seed) for r in requests]
    assert chat.chat_many([]) == []
    assert all(not r.truncated for r in chat.chat_many(requests))


# --- the bundled SmolLM2 on llama.cpp ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_path():
    pytest.importorskip("llama_cpp")
    from inferarena import models

    try:
        return models.resolve("smollm2").path
    except Exception as exc:  # noqa: BLE001 - no bundled model here: nothing to test against
        pytest.skip(f"the bundled smollm2 is not available ({exc})")


def _messages():
    return [[{"role": "system", "content": s}, {"role": "user", "content": q}] for s, q in zip(SYSTEMS, QUESTIONS)]


@pytest.mark.native
def test_greedy_chat_many_equals_one_sequence_at_a_time(smollm2_path):
    """Three prompts decoded together give, token for token, what each gives alone through the same
    generator, and the text `chat` (create_chat_completion) gives: same chat template, same prompt tokens."""
    from inferarena.agents.chat import LlamaChat
    from inferarena.frameworks import llama_cpp as llama

    chat = LlamaChat(smollm2_path, "llama_cpp/q4_1", "q4_1", 2, 1024, {})
    try:
        requests = [ChatRequest(m, 40, 0.0, 11 + i) for i, m in enumerate(_messages())]
        together = chat.chat_many(requests)
        prompts = [llama.chat_request(chat.llm, r.messages, r.max_tokens, r.temperature, r.seed) for r in requests]
        with llama.BatchedGenerator(chat.llm, 3, 1024) as three, llama.BatchedGenerator(chat.llm, 1, 1024) as one:
            batched = three.generate(prompts)
            alone = [one.generate([p])[0] for p in prompts]
        assert [g.tokens for g in batched] == [g.tokens for g in alone]
        assert all(g.completion_tokens > 0 for g in batched)
        assert [r.text for r in together] == [g.text for g in alone]
        singles = [chat.chat(r.messages, r.max_tokens, r.temperature, r.seed) for r in requests]
        assert [r.text for r in singles] == [r.text for r in together]
        assert [(r.prompt_tokens, r.completion_tokens, r.truncated) for r in singles] == \
               [(r.prompt_tokens, r.completion_tokens, r.truncated) for r in together]
        assert all(r.seconds > 0 for r in together)
    finally:
        chat.close()


@pytest.mark.native
def test_truncated_is_set_where_max_tokens_is_hit(smollm2_path):
    from inferarena.agents.chat import LlamaChat

    chat = LlamaChat(smollm2_path, "llama_cpp/q4_1", "q4_1", 2, 1024, {})
    try:
        requests = [ChatRequest(m, 6, 0.7, 5 + i) for i, m in enumerate(_messages())]
        replies = chat.chat_many(requests)
        assert all(r.truncated and r.completion_tokens == 6 for r in replies)
        single = chat.chat(requests[0].messages, 6, 0.7, 5)
        assert single.truncated and single.completion_tokens == 6
        short = chat.chat_many([ChatRequest([{"role": "user", "content": "Say OK."}], 64, 0.0, 1)] * 2)
        assert all(not r.truncated and r.completion_tokens < 64 for r in short)
    finally:
        chat.close()


@pytest.mark.native
def test_a_kept_prefix_is_not_prefilled_again_and_changes_nothing(smollm2_path):
    """The second round goes on from each agent's first prompt and reply: those tokens are taken from the
    sequence that decoded them (whatever the order the requests come in), and the greedy replies are the
    ones a fresh context gives with every prompt token prefilled."""
    from inferarena.agents.chat import LlamaChat
    from inferarena.frameworks import llama_cpp as llama

    chat = LlamaChat(smollm2_path, "llama_cpp/q4_1", "q4_1", 2, 1024, {})
    try:
        first = [ChatRequest(m, 24, 0.0, 1) for m in _messages()]
        replies = chat.chat_many(first)
        follow = [ChatRequest([*m, {"role": "assistant", "content": r.text},
                               {"role": "user", "content": "Check your reply and give it again."}], 24, 0.0, 2)
                  for m, r in zip(_messages(), replies)]
        follow.reverse()
        reused, prefilled = chat.prompt_cache["reused_tokens"], chat.prompt_cache["prefilled_tokens"]
        again = chat.chat_many(follow)
        first_prompts = sum(r.prompt_tokens for r in replies)
        assert chat.prompt_cache["reused_tokens"] - reused >= first_prompts  # at least each first prompt
        assert chat.prompt_cache["prefilled_tokens"] - prefilled < sum(r.prompt_tokens for r in again) - first_prompts
        prompts = [llama.chat_request(chat.llm, r.messages, r.max_tokens, r.temperature, r.seed) for r in follow]
        with llama.BatchedGenerator(chat.llm, 3, 1024) as fresh:
            assert [g.text for g in fresh.generate(prompts)] == [r.text for r in again]
    finally:
        chat.close()
