"""Multi-agent workflows (`inferarena agents`): the gate's logic checked exactly with scripted agents and a
perfect verifier, the sandbox, the safe arithmetic evaluator, tasks, configs, and the command end to end
against an OpenAI-compatible server started here (scripted answers; the slow test runs real SmolLM2)."""

from __future__ import annotations

import json
import math
import re
import zlib

import pytest
from conftest import json_server

from inferarena import registry
from inferarena.agents import tasks as task_sets
from inferarena.agents.arms import Arm, Development, DropoutSearch, DropoutTry
from inferarena.agents.auditor import Indicator
from inferarena.agents.chat import ScriptedChat
from inferarena.agents.config import AgentsConfig, GateSettings, WorkflowConfig, load_workflow
from inferarena.agents.execute import Topology, run_task
from inferarena.agents.gate import Gate
from inferarena.agents.sandbox import run_tests
from inferarena.agents.verifiers import Check, Verifier, equations, final_number, safe_eval
from inferarena.errors import ConfigError


class Perfect(Verifier):
    """Knows the answer (test only: the product's verifiers never see it)."""

    name = "perfect"

    def check(self, task, text, ctx):
        value = final_number(text, strict=True)
        if value is not None and value == task.answer:
            return Check(self.name, 1.0)
        return Check(self.name, 0.0, "wrong", category="wrong")


def test_final_answer_is_the_last_answer_line_or_boxed_number():
    """Qwen2.5 states its answer as \\boxed{N} whatever the system prompt asks: that is a final answer line for
    the format check and the score, and the later of the two forms wins."""
    assert final_number("so the total is \\boxed{18400}.", strict=True) == 18400
    assert final_number("Answer: 5, no wait: \\boxed{\\$1,200}", strict=True) == 1200
    assert final_number("\\boxed{3} then, checked again, Answer: 7", strict=True) == 7
    assert final_number("\\boxed{ 2.5 } hours for 9 km", strict=True) == 2.5
    assert final_number("4 apples and 6 pears", strict=True) is None and final_number("4 apples and 6 pears") == 6


@pytest.fixture
def perfect(monkeypatch):
    monkeypatch.setitem(registry.VERIFIERS, "perfect", "test_agents:Perfect")
    return {"perfect": Perfect()}


def debate(rounds: int = 1) -> WorkflowConfig:
    names = ["s1", "s2", "s3"]
    return WorkflowConfig(name="t", rounds=rounds, agents=[
        {"name": n, "role": "solver", "system": "solve", "sees": names, "checks": ["perfect"]} for n in names],
        aggregator={"rule": "majority", "reads": names})


def scripted(errs) -> ScriptedChat:
    """`errs(agent, task_answer, attempt) -> bool`: whether that attempt answers wrong (always 999 then)."""
    def script(messages, seed):
        system, user = messages[0]["content"], messages[1]["content"]
        agent = system.split(":", 1)[1]
        answer = float(re.search(r"ANSWER=(\d+)", user).group(1))
        attempt = sum(1 for m in messages if m["role"] == "user" and m["content"].startswith("A checker"))
        return "Answer: 999" if errs(agent, answer, attempt) else f"Answer: {answer:g}"
    return ScriptedChat(script)


def task(answer: int, i: int = 0):
    return task_sets.Task(f"t{i}", "number", f"q ANSWER={answer}", float(answer))


def models_for(workflow, chat):
    for agent in workflow.agents:
        agent.system = f"solve:{agent.name}"
    return lambda name: chat


def test_rectify_keeps_fixes_and_rejects_what_stays_wrong(perfect):
    workflow = debate()
    chat = scripted(lambda agent, answer, attempt: agent == "s3" or (agent == "s2" and attempt == 0))
    gate = Gate(GateSettings(retries=2), rectify=True, verifiers=perfect)
    run = run_task(workflow, task(7), models_for(workflow, chat), gate)
    status = {m.agent: (m.status, m.attempts) for m in run.messages}
    assert status == {"s1": ("kept", 1), "s2": ("rectified", 2), "s3": ("rejected", 3)}
    assert run.correct and run.answer == "Answer: 7" and not run.fallback
    assert run.usage["s2"].rectify_rounds == 1 and run.usage["s3"].rectify_rounds == 2
    assert run.usage["s3"].calls == 3 and run.usage["s3"].rejected == 1


def test_reject_only_prunes_at_once_and_baseline_keeps_everything(perfect):
    workflow = debate()
    chat = scripted(lambda agent, answer, attempt: agent in ("s2", "s3") and attempt == 0)
    models = models_for(workflow, chat)
    pruned = run_task(workflow, task(5), models, Gate(GateSettings(retries=2), rectify=False, verifiers=perfect))
    assert [m.status for m in pruned.messages] == ["kept", "rejected", "rejected"]
    assert pruned.correct and sum(u.calls for u in pruned.usage.values()) == 3
    baseline = run_task(workflow, task(5), models, None)
    assert [m.status for m in baseline.messages] == ["kept"] * 3
    assert not baseline.correct and baseline.answer == "Answer: 999"  # two wrong solvers outvote one right


def test_fallback_restores_the_best_rejected_message_or_leaves_the_task_unanswered(perfect):
    workflow = debate()
    chat = scripted(lambda agent, answer, attempt: True)
    models = models_for(workflow, chat)
    best = run_task(workflow, task(3), models, Gate(GateSettings(retries=1, fallback="best"), verifiers=perfect))
    assert best.fallback and best.answer == "Answer: 999" and not best.correct
    assert [m.status for m in best.messages] == ["rejected"] * 3 + ["restored"]
    none = run_task(workflow, task(3), models, Gate(GateSettings(retries=1, fallback="none"), verifiers=perfect))
    assert none.answer is None and not none.fallback and not none.correct


def test_injected_error_rates_give_exactly_the_expected_prunes_and_rectifications(perfect):
    """Errors drawn per (agent, task, attempt) at 40%: with a perfect verifier and two retries, a message is
    rejected exactly when all three attempts err, and rectified when the first errs and a later one does not."""
    def errs(agent, answer, attempt):
        return zlib.crc32(f"{agent}/{answer:g}/{attempt}".encode()) % 100 < 40

    workflow = debate(rounds=2)
    models = models_for(workflow, scripted(errs))
    gate = Gate(GateSettings(retries=2), rectify=True, verifiers=perfect)
    rejected = rectified = kept = 0
    for i in range(30):
        answer = 10 + i
        run = run_task(workflow, task(answer, i), models, gate)
        for agent in ("s1", "s2", "s3"):
            first = errs(agent, answer, 0)
            expected = ("rejected" if all(errs(agent, answer, a) for a in range(3)) else "rectified" if first else "kept")
            statuses = [m.status for m in run.messages if m.agent == agent]
            assert statuses == [expected] * 2  # the same draws in both rounds
            rejected += expected == "rejected"
            rectified += expected == "rectified"
            kept += expected == "kept"
        survivors = [a for a in ("s1", "s2", "s3") if not all(errs(a, answer, k) for k in range(3))]
        assert run.correct == bool(survivors)  # every surviving message is right: the majority is right
    assert rejected and rectified and kept  # the draws exercised every branch


def test_dropout_topology_removes_agents_and_edges(perfect):
    workflow = debate(rounds=2)
    seen = []

    def script(messages, seed):
        seen.append(messages)
        return "Answer: 1"
    models = models_for(workflow, ScriptedChat(script))
    run = run_task(workflow, task(1), models, None, Topology(frozenset({"s3"}), frozenset({("s1", "s2")})))
    assert {m.agent for m in run.messages} == {"s1", "s2"} and run.correct
    s1, s2 = seen[2], seen[3]  # the second round: each goes on from its own reply
    assert [m["role"] for m in s1] == ["system", "user", "assistant", "user"] and s1[2]["content"] == "Answer: 1"
    assert "[s2]" not in s1[3]["content"] and s1[3]["content"].startswith("Check your reply")  # s1 no longer reads s2
    assert "[s1]" in s2[3]["content"]  # s2 still reads s1
    assert all("[s3]" not in m["content"] for chat in seen for m in chat)


def test_sandbox_stops_file_reads_sockets_and_endless_loops():
    good = run_tests("def f(x):\n    return x + 1", ["assert f(1) == 2"])
    assert good.ok and good.score == 1.0
    reads = run_tests("def f():\n    return open('/etc/hostname').read()", ["f()"])
    assert not reads.ok and reads.blocked and "not allowed" in reads.error
    sock = run_tests("import socket\ndef f():\n    return socket.socket()", ["f()"])
    assert not sock.ok and sock.blocked
    loop = run_tests("def f():\n    while True:\n        pass", ["f()"], timeout_s=2.0)
    assert not loop.ok and loop.timed_out
    writes = run_tests("def f():\n    open('/tmp/inferarena-escape', 'w').write('x')", ["f()"])
    assert not writes.ok and writes.blocked


def test_a_generated_answer_that_escapes_is_counted_failed():
    from inferarena.agents.execute import score

    t = task_sets.code(1)[0]
    name = t.meta["function"]
    bad = f"```python\ndef {name}(*a):\n    import os\n    return os.listdir('/')\n```"
    assert score(t, bad) is False


def test_safe_eval_is_arithmetic_only():
    assert safe_eval("(20 - 4) / 2") == 8
    for bad in ("__import__('os')", "a + 1", "2 ** 10 ** 10", "[1][0]", "(lambda: 1)()"):
        with pytest.raises(ValueError):
            safe_eval(bad)
    found = equations("First 12 + 5 = 17, then 17 × 2 = 35.")
    assert [(s, v) for _, s, v in found] == [(17, 17), (35, 34)]


def test_tasks_are_seeded_and_exact(tmp_path):
    a, b = task_sets.arithmetic(12, seed=3), task_sets.arithmetic(12, seed=3)
    assert a == b and all(t.answer == int(t.answer) and t.answer >= 0 for t in a)
    assert {t.level for t in a} == {1, 2, 3}
    test, dev = task_sets.split("arithmetic", 5, 3, 0)
    assert not {t.question for t in test} & {t.question for t in dev}
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(ConfigError, match="neither"):
        task_sets.from_jsonl(bad, 5)


def test_workflow_errors_name_the_problem(tmp_path):
    assert load_workflow("debate-math").rounds == 2 and load_workflow("code-review").answer == "code"
    path = tmp_path / "w.yaml"
    path.write_text("name: w\nagents: [{name: a, role: r, system: s, checks: [nope]}]\naggregator: {reads: [a]}\n")
    with pytest.raises(ConfigError, match="unknown check 'nope'"):
        load_workflow(str(path))
    with pytest.raises(ConfigError, match="no workflow"):
        load_workflow("nope")
    with pytest.raises(ValueError, match="should be .baseline., .dropout."):
        AgentsConfig(arms=["baseline", "magic"])


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    from inferarena.cli import main

    for argv in (["agents", "--workflow", "nope"], ["agents", "--arms", "magic"], ["agents", "--endpoint", "ftp://x"], ["agents", "--variants", "torch/fp32", "--db", str(tmp_path / "b.db")],
                 ["agents", "--tasks", str(tmp_path / "missing.jsonl"), "--n", "2", "--db", str(tmp_path / "a.db")]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "error:" in err and "Traceback" not in err, (argv, err)


def _chat(path: str, body: dict) -> dict:
    """An OpenAI-compatible chat server answering by rule, standing in for a real model in a fast test: it
    writes a wrong equation and the sum of every number of the task (wrong), then "Answer: 1" once a
    checker sends it back; the auditor passes everything. Tokens are words."""
    user = body["messages"][-1]["content"]
    if body["messages"][0]["content"].startswith("You audit"):
        text = "PASS"
    else:
        question = next(m["content"] for m in body["messages"] if m["role"] == "user")
        numbers = [int(x) for x in re.findall(r"\d+", question.split("Messages so far")[0])]
        text = f"{numbers[0]} + 1 = {numbers[0] + 2}\nAnswer: {sum(numbers)}" if "checker" not in user else "Answer: 1"
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    return {"choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(text.split())}}


@pytest.fixture
def chat_server():
    with json_server(_chat) as url:
        yield url + "/v1"


def test_agents_command_end_to_end_on_an_endpoint(tmp_path, chat_server, capsys):
    """Every arm through the real CLI, spawned jobs, store, --json, show and the HTML report; the server
    answers by rule (wrong: its sum of every number), so the gate's arithmetic check rejects or rectifies."""
    from inferarena.cli import main

    db, out = tmp_path / "agents.db", tmp_path / "agents.json"
    argv = ["agents", "--endpoint", chat_server, "--n", "3", "--quick", "--db", str(db), "--json", str(out),
            "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    text = capsys.readouterr().out
    assert exit_info.value.code == 0, text
    assert "Workflow — ranked by accuracy" in text and "rectify-or-reject vs baseline" in text
    doc = json.loads(out.read_text())
    arms = {a["arm"]: a for a in doc["arms"]}
    assert set(arms) == {"baseline", "dropout", "reject-only", "rectify-or-reject"}
    # What a stop would keep: every arm's finished tasks and the development result (agents/checkpoint.py).
    work = tmp_path / ".inferarena" / f"agents-{doc['run_id']}"
    logs = sorted(work.glob("*.tasks.jsonl"))
    assert len(logs) == 4 and all(len(log.read_text().splitlines()) == 1 + 3 for log in logs)
    assert len(list(work.glob("*-dev.json"))) == 1
    for arm in arms.values():
        assert arm["status"] == "ok", arm
        for key in ("accuracy", "accuracy_ci", "prompt_tokens", "completion_tokens", "llm_calls", "wall_s",
                    "prune_rate", "rectify_rounds_mean", "tokens_per_correct"):
            assert key in arm
        assert arm["energy_j"] is None  # a remote server's energy is not metered here
    assert arms["baseline"]["prune_rate"] == 0 and arms["baseline"]["llm_calls"] == 3 * 6
    assert arms["rectify-or-reject"]["rectify_rounds_mean"] > 0
    with pytest.raises(SystemExit) as exit_info:
        main(["show", str(doc["run_id"]), "--db", str(db)])
    shown = capsys.readouterr().out
    assert exit_info.value.code == 0 and "Per agent" in shown and "truncated" in shown
    page = (tmp_path / f"inferarena-run-{doc['run_id']}.html").read_text()
    assert "Findings" in page and "Per agent" in page and "Accuracy vs tokens" in page and ">truncated<" in page
    for argv, expected in ((["recommend", str(doc["run_id"]), "--profile", "accuracy"], "Reproduce: inferarena agents"),
                           (["compare", str(doc["run_id"]), str(doc["run_id"])], "tie")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--db", str(db)])
        flat = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the panel wraps where the port's digits fall
        assert exit_info.value.code == 0 and expected in flat


@pytest.mark.slow
def test_agents_on_the_bundled_llm(tmp_path, capsys):
    """The real SmolLM2 on llama.cpp, two arms on one task (one development task), end to end."""
    pytest.importorskip("llama_cpp")
    from inferarena.cli import main

    out = tmp_path / "a.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["agents", "--model", "smollm2", "--n", "1", "--dev-n", "1", "--arms", "baseline,rectify-or-reject", "--quick",
              "--max-tokens", "24", "--db", str(tmp_path / "a.db"), "--json", str(out), "--no-report"])
    assert exit_info.value.code == 0, capsys.readouterr().out
    arms = json.loads(out.read_text())["arms"]
    assert [a["status"] for a in arms] == ["ok", "ok"]
    assert all(a["completion_tokens"] > 0 and a["energy_j"] > 0 for a in arms)


@pytest.mark.slow
def test_gsm8k_on_the_bundled_model(tmp_path, capsys):
    """The model the agents extra bundles (Qwen2.5-Coder-0.5B, sha256-checked) on 3 real GSM8K problems, end to
    end (the default, the 1.5B, is a 1.1 GB extra of its own that the tests never download)."""
    pytest.importorskip("llama_cpp")
    from inferarena import models
    from inferarena.cli import main
    from inferarena.errors import InferarenaError

    try:
        models.resolve("qwen-coder-0.5b")
    except InferarenaError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "g.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["agents", "--model", "qwen-coder-0.5b", "--tasks", "gsm8k", "--n", "3", "--dev-n", "1", "--arms",
              "baseline", "--max-tokens", "320",
              "--db", str(tmp_path / "g.db"), "--json", str(out), "--no-report"])
    assert exit_info.value.code == 0, capsys.readouterr().out
    (arm,) = json.loads(out.read_text())["arms"]
    assert arm["status"] == "ok" and arm["tasks"] == 3 and arm["completion_tokens"] > 0
    assert arm["variant"] == "llama_cpp/q4_k_m"


def test_tasks_to_resolve_the_papers_effect():
    """How many paired tasks a 95 % interval needs to be narrower than ±6.39 points: more where the arms
    disagree on more tasks, and never fewer than where only the effect's own tasks differ."""
    from inferarena.kinds.workflow import PAPER_EFFECT, tasks_to_resolve

    same = [True, False] * 25
    assert tasks_to_resolve(same, same) == math.ceil(1.96**2 * PAPER_EFFECT * (1 - PAPER_EFFECT) / PAPER_EFFECT**2)
    noisy = [True] * 10 + [False] * 40
    flipped = [False] * 10 + [True] * 10 + [False] * 30
    assert tasks_to_resolve(noisy, flipped) > tasks_to_resolve(same, same) > 50


def test_task_log_keeps_finished_tasks_across_a_stop(tmp_path):
    """An arm cut off by a stop keeps its finished tasks: each is appended as it ends and read back on resume;
    a log written under other settings is ignored, and a line cut short by the stop is dropped."""
    import numpy as np

    from inferarena.agents import checkpoint
    from inferarena.agents.arms import Usage
    from inferarena.agents.execute import Message, TaskRun

    def run(i, correct):
        t = task_sets.Task(f"t{i}", "number", f"q{i}", float(i), tests=("a",), meta={"solution": "s"})
        return TaskRun(t, str(i), correct, [Message("s1", 0, f"Answer: {i}", "rectified", 2, 0.5, ["wrong"])],
                       {"s1": Usage(calls=2, prompt_tokens=10, completion_tokens=5, seconds=1.5, messages=1,
                                    rectify_rounds=1, truncated=1)}, 1.5, fallback=i == 2)

    path = tmp_path / "arm.tasks.jsonl"
    log = checkpoint.TaskLog(path, "k1")
    for i in range(3):
        log.add(run(i, i % 2 == 0), 1.0 + i, 0.1 * i)
    again = checkpoint.TaskLog(path, "k1")
    assert list(again.done) == ["t0", "t1", "t2"]
    back, wall, joules = again.done["t2"]
    assert back == run(2, True) and (wall, joules) == (3.0, 0.2)  # every field, dataclasses and tuples included
    with path.open("a") as out:
        out.write('{"run": {"task": {"id": "t3"')  # the stop cut this line
    cut = checkpoint.TaskLog(path, "k1")
    assert list(cut.done) == ["t0", "t1", "t2"]
    cut.add(run(3, False), 1.0, None)
    assert list(checkpoint.TaskLog(path, "k1").done) == ["t0", "t1", "t2", "t3"]
    assert checkpoint.TaskLog(path, "other settings").done == {} and not path.exists()
    # The development result keys the same after a round trip through its file (numpy arrays become lists).
    dev = Development(4, 0.25, 812.5, [Indicator("no final answer line", "d", "t", "s", 3)],
                      np.ones((1, 3), np.float32), ["s2"], [("s1", "s3")],
                      DropoutSearch([DropoutTry("agent s2", 0.25, 700.0, True)], ["agent s2"], 0.25, 700.0), "stored")
    saved = tmp_path / "dev.json"
    checkpoint.save_development(saved, checkpoint.key("c", dev.as_dict()), dev)
    reloaded = checkpoint.load_development(saved, checkpoint.key("c", dev.as_dict()))
    assert reloaded.indicator_vectors == [[1.0] * 3] and reloaded.removed_edges == [("s1", "s3")]
    assert reloaded.indicators == dev.indicators and reloaded.dropout == dev.dropout
    assert checkpoint.key("c", reloaded.as_dict()) == checkpoint.key("c", dev.as_dict())
    assert checkpoint.load_development(saved, "another key") is None
    assert reloaded.report(Arm.BASELINE) == {"dev_tasks": 4, "dev_accuracy": 0.25, "dev_tokens_per_task": 812.5,
                                             "embedder": "stored"}
    assert reloaded.report(Arm.DROPOUT)["dropout"]["removed"] == ["agent s2"]
    assert reloaded.report(Arm.REJECT_ONLY)["indicators"] == [{"name": "no final answer line", "support": 3,
                                                               "trigger": "t"}]


def test_old_aggregator_kind_still_loads_as_rule(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("name: w\nagents: [{name: a, role: r, system: s}]\naggregator: {kind: last, reads: [a]}\n")
    assert load_workflow(str(path)).aggregator.rule == "last"
    assert load_workflow("debate-math").aggregator.rule == "majority"


def test_sampling_is_the_agents_where_named_else_the_models(perfect):
    """An agent's top_k/top_p/repeat_penalty reach the model on every call; what it leaves unset is the
    model's own recommendation (a bundled model's meta), else llama-cpp-python's defaults."""
    from inferarena.agents.chat import DEFAULT_SAMPLING, ChatRequest, sampling_of

    seen = []

    class Recording(ScriptedChat):
        def chat(self, messages, max_tokens, temperature, seed, **sampling):
            seen.append(self.resolved(sampling))
            return super().chat(messages, max_tokens, temperature, seed, **sampling)

    chat = Recording(lambda messages, seed: "Answer: 1")
    chat.sampling = {**DEFAULT_SAMPLING, "top_k": 20, "repeat_penalty": 1.1}
    workflow = debate(rounds=1)
    workflow.agents[0].top_k, workflow.agents[1].repeat_penalty = 5, 1.3
    run_task(workflow, task(1), models_for(workflow, chat), None)
    assert seen == [{"top_k": 5, "top_p": 0.95, "repeat_penalty": 1.1}, {"top_k": 20, "top_p": 0.95, "repeat_penalty": 1.3},
                    {"top_k": 20, "top_p": 0.95, "repeat_penalty": 1.1}]
    assert sampling_of(ChatRequest([], 8, 0.7, 1)) == {"top_k": None, "top_p": None, "repeat_penalty": None}
