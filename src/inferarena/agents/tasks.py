"""Tasks with checkable answers: generated arithmetic word problems, small Python functions with unit
tests, 100 GSM8K test problems (shipped in data/, MIT: see NOTICE-gsm8k.txt), or a user's JSONL file
(`{question, answer}` or `{prompt, tests}`).

A task knows its answer (or its hidden tests) for scoring only; the gate never sees them. A code task's
`public_tests` are shown in the prompt and may be run by the gate; its `tests` decide the score.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from inferarena.errors import ConfigError

LEVELS = (1, 2, 3)  # operations beyond the first quantity: 2, 3 and 4-step problems


@dataclass(frozen=True)
class Task:
    id: str
    kind: str  # "number" or "code"
    question: str
    answer: float | None = None
    tests: tuple[str, ...] = ()  # hidden: decide the score
    public_tests: tuple[str, ...] = ()  # shown in the prompt; the gate may run them
    level: int | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)


_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo")
_ITEMS = ("apples", "marbles", "stickers", "coins", "books", "pencils", "cards", "shells")


def arithmetic(n: int, seed: int = 0, levels: tuple[int, ...] = LEVELS) -> list[Task]:
    """`n` word problems, seeded, cycling through the difficulty levels (1: two steps ... 3: four steps).
    Every intermediate quantity stays a non-negative integer, so the answer is exact."""
    rng = random.Random(f"arithmetic-{seed}")
    tasks = []
    for i in range(n):
        level = levels[i % len(levels)]
        name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
        value = rng.randint(5, 40)
        sentences = [f"{name} has {value} {item}."]
        for _ in range(level + 1):
            op = rng.choice(("buy", "give", "times", "share") if value > 1 else ("buy", "times"))
            if op == "buy":
                k = rng.randint(2, 30)
                value += k
                sentences.append(f"Then {name} gets {k} more.")
            elif op == "give":
                k = rng.randint(1, max(1, value - 1))
                value -= k
                sentences.append(f"Then {name} gives away {k}.")
            elif op == "times" and value <= 200:
                k = rng.randint(2, 4)
                value *= k
                sentences.append(f"Then the number of {item} becomes {k} times as many.")
            else:
                divisors = [d for d in (2, 3, 4, 5) if value % d == 0]
                if not divisors:
                    k = rng.randint(2, 9)
                    value += k
                    sentences.append(f"Then {name} finds {k} more.")
                    continue
                k = rng.choice(divisors)
                value //= k
                sentences.append(f"Then {name} splits them into {k} equal groups and keeps one group.")
        question = " ".join(sentences) + f" How many {item} does {name} have now?"
        tasks.append(Task(f"arith-{seed}-{i}", "number", question, float(value), level=level))
    return tasks


# (function name, signature line, description, public tests, hidden tests)
_CODE = (
    ("add", "def add(a, b):", "return the sum of a and b",
     ("assert add(2, 3) == 5",), ("assert add(-1, 1) == 0", "assert add(10, 20) == 30", "assert add(0, 0) == 0")),
    ("is_even", "def is_even(n):", "return True when the integer n is even",
     ("assert is_even(4) is True",), ("assert is_even(7) is False", "assert is_even(0) is True", "assert is_even(-2) is True")),
    ("reverse", "def reverse(s):", "return the string s reversed",
     ("assert reverse('abc') == 'cba'",), ("assert reverse('') == ''", "assert reverse('a') == 'a'", "assert reverse('racecar') == 'racecar'")),
    ("factorial", "def factorial(n):", "return n! for a non-negative integer n",
     ("assert factorial(3) == 6",), ("assert factorial(0) == 1", "assert factorial(5) == 120", "assert factorial(1) == 1")),
    ("largest", "def largest(xs):", "return the largest number in the non-empty list xs",
     ("assert largest([1, 5, 2]) == 5",), ("assert largest([-3, -1, -7]) == -1", "assert largest([4]) == 4", "assert largest([2, 2]) == 2")),
    ("count_vowels", "def count_vowels(s):", "return how many of the letters a, e, i, o, u (any case) are in s",
     ("assert count_vowels('hello') == 2",), ("assert count_vowels('') == 0", "assert count_vowels('AEIOU') == 5", "assert count_vowels('xyz') == 0")),
    ("is_palindrome", "def is_palindrome(s):", "return True when s reads the same backwards",
     ("assert is_palindrome('level') is True",), ("assert is_palindrome('ab') is False", "assert is_palindrome('') is True", "assert is_palindrome('a') is True")),
    ("digit_sum", "def digit_sum(n):", "return the sum of the decimal digits of the non-negative integer n",
     ("assert digit_sum(123) == 6",), ("assert digit_sum(0) == 0", "assert digit_sum(9) == 9", "assert digit_sum(1001) == 2")),
    ("gcd", "def gcd(a, b):", "return the greatest common divisor of two positive integers",
     ("assert gcd(12, 8) == 4",), ("assert gcd(7, 3) == 1", "assert gcd(10, 10) == 10", "assert gcd(100, 75) == 25")),
    ("fib", "def fib(n):", "return the n-th Fibonacci number, with fib(0) == 0 and fib(1) == 1",
     ("assert fib(5) == 5",), ("assert fib(0) == 0", "assert fib(1) == 1", "assert fib(10) == 55")),
    ("square_all", "def square_all(xs):", "return a new list with every number of xs squared",
     ("assert square_all([1, 2]) == [1, 4]",), ("assert square_all([]) == []", "assert square_all([-3]) == [9]", "assert square_all([0, 5]) == [0, 25]")),
    ("count_words", "def count_words(s):", "return the number of words in s, separated by whitespace",
     ("assert count_words('a b c') == 3",), ("assert count_words('') == 0", "assert count_words('  hi  ') == 1", "assert count_words('one two') == 2")),
)


def code(n: int, seed: int = 0) -> list[Task]:
    """`n` small functions (cycled, in a seeded order): the signature and a public test in the prompt,
    three hidden tests for the score."""
    order = list(range(len(_CODE)))
    random.Random(f"code-{seed}").shuffle(order)
    tasks = []
    for i in range(n):
        name, signature, description, public, hidden = _CODE[order[i % len(order)]]
        question = (f"Write a Python function `{signature}` that should {description}.\n"
                    f"It must pass: {'; '.join(public)}")
        tasks.append(Task(f"code-{seed}-{i}-{name}", "code", question, tests=public + hidden, public_tests=public,
                          meta={"function": name}))
    return tasks


GSM8K_SIZE = 100
GSM8K_DEV_SIZE = 20
_GSM8K_FIX = "or pass your own GSM8K-style file: --tasks FILE.jsonl of {question, answer}"


def _gsm8k_rows(name: str, seed: int) -> list[dict]:
    text = (resources.files("inferarena.agents") / "data" / name).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    random.Random(f"gsm8k-{seed}").shuffle(rows)
    return rows


def _gsm8k_task(row: dict) -> Task:
    return Task(row["id"], "number", row["question"], float(row["answer"]), meta={"solution": row.get("solution")})


def gsm8k(n: int, seed: int = 0) -> list[Task]:
    """The first `n` of the 100 GSM8K test problems in data/gsm8k_test_100.jsonl (made by
    scripts/make_gsm8k.py), in a seeded order: every `n` takes a prefix of the same order."""
    if n > GSM8K_SIZE:
        raise ConfigError(f"--tasks gsm8k has {GSM8K_SIZE} problems, not {n}",
                          f"lower --n to {GSM8K_SIZE}, {_GSM8K_FIX}")
    return [_gsm8k_task(row) for row in _gsm8k_rows("gsm8k_test_100.jsonl", seed)[:n]]


def gsm8k_dev(n: int, seed: int = 0) -> list[Task]:
    """The first `n` of 20 other GSM8K test problems (data/gsm8k_dev_20.jsonl, none of them among the
    100), in a seeded order: the development split, so that --n 100 keeps every test problem."""
    if n > GSM8K_DEV_SIZE:
        raise ConfigError(f"--tasks gsm8k has {GSM8K_DEV_SIZE} development problems, not --dev-n {n}",
                          f"lower --dev-n to {GSM8K_DEV_SIZE}, {_GSM8K_FIX}")
    return [_gsm8k_task(row) for row in _gsm8k_rows("gsm8k_dev_20.jsonl", seed)[:n]]


# 72, "-3", "1,000", "$18", "18.50", "25%"; a GSM8K answer's number follows its last "####".
_PLAIN_NUMBER = re.compile(r"\s*([-+]?)\s*\$?\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*")


def parse_answer(value: object) -> float | None:
    """A task file's answer as a number, or None: a JSON number, or a string like "1,000", "$18" or
    GSM8K's own "<solution> #### 72"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    found = _PLAIN_NUMBER.fullmatch(value.rpartition("####")[2].replace(",", ""))
    return float(found.group(1) + found.group(2)) if found else None


def from_jsonl(path: Path, n: int, seed: int = 0) -> list[Task]:
    """A user's tasks: `{question, answer}` (a number, or text `parse_answer` reads: GSM8K's own test.jsonl
    works as it is) or `{prompt, tests}` (assert lines; optional `public_tests`), the first `n` in a seeded
    order."""
    if not path.is_file():
        raise ConfigError(f"task file {path} does not exist", "pass a JSONL file of {question, answer} or {prompt, tests}")
    tasks = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path.name} line {number} is not JSON", "write one JSON object per line") from None
        if "question" in row and "answer" in row:
            answer = parse_answer(row["answer"])
            if answer is None:
                raise ConfigError(f"{path.name} line {number}: answer {str(row['answer'])[-40:]!r} is not a number",
                                  "give numeric answers such as 72 or \"1,000\" (the workflows check numbers)")
            tasks.append(Task(f"{path.stem}-{number}", "number", str(row["question"]), answer))
        elif "prompt" in row and "tests" in row:
            tests = tuple(row["tests"] if isinstance(row["tests"], list) else str(row["tests"]).splitlines())
            tasks.append(Task(f"{path.stem}-{number}", "code", str(row["prompt"]), tests=tests,
                              public_tests=tuple(row.get("public_tests") or ())))
        else:
            raise ConfigError(f"{path.name} line {number} has neither question+answer nor prompt+tests",
                              "write {\"question\": ..., \"answer\": N} or {\"prompt\": ..., \"tests\": [...]}")
    if not tasks:
        raise ConfigError(f"task file {path} holds no tasks", "add one JSON object per line")
    random.Random(f"jsonl-{seed}").shuffle(tasks)
    return tasks[:n]


# Completion tokens a message needs, per built-in task set, where the workflow's own limit is too short:
# GSM8K's worked solutions run longer than the generated problems'. At 320 tokens 24 % of Qwen2.5-Coder-0.5B's
# debate replies were cut off before their answer (100 tasks, 2-core EPYC); at 640, 0 of a 30-reply probe.
MAX_TOKENS = {"gsm8k": 640}


def load(spec: str, n: int, seed: int) -> list[Task]:
    if spec == "arithmetic":
        return arithmetic(n, seed)
    if spec == "code":
        return code(n, seed)
    if spec == "gsm8k":
        return gsm8k(n, seed)
    if spec.endswith(".jsonl"):
        return from_jsonl(Path(spec), n, seed)
    raise ConfigError(f"unknown tasks {spec!r}", "use arithmetic, code, gsm8k, or a .jsonl file")


def split(spec: str, n: int, dev_n: int, seed: int) -> tuple[list[Task], list[Task]]:
    """(test tasks, development tasks): generated ones from different seeds; GSM8K's from two disjoint
    files (100 test, 20 development problems); from a file, the first dev_n tasks (after shuffling) are the development split, the next n the test split, so the
    two never share a task (and a smaller dev_n, as with --quick, takes a subset of the same split)."""
    if spec == "gsm8k":
        return gsm8k(n, seed), gsm8k_dev(dev_n, seed)
    if spec.endswith(".jsonl"):
        every = from_jsonl(Path(spec), n + dev_n, seed)
        if len(every) <= dev_n:
            raise ConfigError(f"{spec} has {len(every)} tasks, too few for {dev_n} development tasks and a test split",
                              "add tasks or lower --dev-n")
        return every[dev_n:], every[:dev_n]
    return load(spec, n, seed), load(spec, dev_n, seed + 10_007)
