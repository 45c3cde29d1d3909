"""The gate's verifiers: each reads one message and scores it (1.0: nothing wrong), with feedback
the agent can act on. Registered in `registry.VERIFIERS`; a workflow names them per agent.

    format      the answer is where the aggregator looks (a final "Answer: N" line, or a code block)
    regex       the message matches the agent's `pattern`
    json        the message holds JSON that fits the agent's `schema` (jsonschema)
    arithmetic  every equation written in the message is right, checked by a safe AST evaluator
    code        the code passes the task's public tests in the sandbox
    auditor     an LLM auditor, shown the failure indicators nearest the message (auditor.py)

None of them sees a task's answer or hidden tests: those only score the final answer.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from inferarena.agents.sandbox import run_tests
from inferarena.agents.tasks import Task


@dataclass
class Check:
    name: str
    score: float  # 1.0: nothing found wrong
    feedback: str | None = None
    calls: int = 0  # LLM calls it made (the auditor)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    category: str | None = None  # what kind of flaw, for mining indicators


class Verifier(ABC):
    name: ClassVar[str]

    @abstractmethod
    def check(self, task: Task, text: str, ctx: Any) -> Check:
        """`ctx`: the gate's context (the agent's config, the auditor, the sandbox limits)."""


# -- answers ---------------------------------------------------------------------------------------

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_ANSWER = re.compile(rf"answer\s*(?:is)?\s*[:=]?\s*\**\s*\$?\s*({_NUMBER})", re.IGNORECASE)


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


# LaTeX's \boxed{N}, how math-tuned models (Qwen2.5's among them) state a final answer whatever the prompt asks
_BOXED = re.compile(rf"\\boxed\{{\s*(?:\\\$|\$)?\s*({_NUMBER})")


def final_number(text: str, strict: bool = False) -> float | None:
    """The last stated final answer: the number after "Answer:" or inside \\boxed{}, whichever comes last;
    without one, the last number in the text (unless `strict`)."""
    found = [(m.start(), m.group(1)) for pattern in (_ANSWER, _BOXED) for m in pattern.finditer(text)]
    if found:
        return _to_float(max(found)[1])
    if strict:
        return None
    numbers = re.findall(_NUMBER, text)
    return _to_float(numbers[-1]) if numbers else None


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(text: str) -> str | None:
    """The first fenced code block that parses, else the whole text if it parses and defines a function."""
    for block in _FENCE.findall(text):
        if _parses(block):
            return block.strip()
    stripped = text.strip()
    return stripped if "def " in stripped and _parses(stripped) else None


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


# -- verifiers -------------------------------------------------------------------------------------

class Format(Verifier):
    name = "format"

    def check(self, task, text, ctx):
        if task.kind == "code":
            if extract_code(text) is None:
                return Check(self.name, 0.0, "Reply with one ```python code block holding the whole function; "
                             "yours has no code that parses.", category="no parsable code")
            return Check(self.name, 1.0)
        if final_number(text, strict=True) is None:
            return Check(self.name, 0.0, 'End your reply with a line "Answer: N", N being the final number.',
                         category="no final answer line")
        return Check(self.name, 1.0)


class Regex(Verifier):
    name = "regex"

    def check(self, task, text, ctx):
        pattern = ctx.agent.pattern
        if not pattern or re.search(pattern, text, re.DOTALL):
            return Check(self.name, 1.0)
        return Check(self.name, 0.0, f"Your reply must match the pattern {pattern!r}.", category="wrong format")


class Json(Verifier):
    name = "json"

    def check(self, task, text, ctx):
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start:end + 1]) if start >= 0 < end else None
        except json.JSONDecodeError as exc:
            return Check(self.name, 0.0, f"Your JSON does not parse ({exc.msg}); reply with one JSON object.",
                         category="invalid JSON")
        if data is None:
            return Check(self.name, 0.0, "Reply with one JSON object.", category="no JSON")
        schema = ctx.agent.json_schema
        if schema:
            import jsonschema

            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
            if errors:
                return Check(self.name, 0.0, f"Your JSON does not fit the schema: {errors[0].message}.",
                             category="JSON off schema")
        return Check(self.name, 1.0)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def safe_eval(expression: str) -> float:
    """An arithmetic expression's value: numbers, + - * / // % ** and parentheses, nothing else (never
    `eval`). Raises ValueError for anything it does not allow, or exponents that would blow up."""
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = walk(node.operand)
            return value if isinstance(node.op, ast.UAdd) else -value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not arithmetic: {type(node).__name__}")

    if len(expression) > 200:
        raise ValueError("expression too long")
    try:
        return float(walk(ast.parse(expression, mode="eval")))
    except (SyntaxError, ZeroDivisionError, OverflowError, TypeError) as exc:
        raise ValueError(str(exc)) from None


# "12 + 5 = 17", "3 × 4 = 12", "(20 - 4) / 2 = 8": an expression with an operator, then "= number".
# On one line; it starts at a whole number (".5" or "0.5", not the "5" of one) or a parenthesis.
_EQUATION = re.compile(rf"((?:(?<![\d.,])\.?\d[\d.,]*|[()])(?:[ \t]*(?:[-+*/×x÷]|\*\*)[ \t]*\(?[ \t]*[\d.,]+[ \t]*\)?)+)"
                       rf"[ \t]*=[ \t]*\$?({_NUMBER})")


# An equation read only in part is skipped, not judged: one whose expression follows an operator, a unary
# minus, a parenthesis or a number on its line ("15 pages x 1/3 = 5", "-30/3 = -10", "(1/2) 278 + 11",
# "350 000 x 5/100"), or whose value is a percentage, a fraction, a mixed number or the start of another
# expression ("3 / 6 = 50%", "2/40 = 1/20", "= 3 1/2", "2 * 4 + 3 * 6 = 8 + 18 = 26").
_OP = r"(?:[-+*/×÷–−]|\*\*)"
_CUT_BEFORE = re.compile(rf"(?:[\w%)]\s*{_OP}\s*\$?|[\w%)]\s+x|[\d)])\s*$|[-–−]$")
_CUT_AFTER = re.compile(rf"\s*%|\s*/\s*\d|[ \t]+\d+\s*/\s*\d|[ \t]*(?:{_OP}|x\s)[ \t]*\$?\d")


def equations(text: str) -> list[tuple[str, float, float]]:
    """(expression, stated value, true value) for each equation the text writes in full."""
    found = []
    for match in _EQUATION.finditer(text):
        line = text[text.rfind("\n", 0, match.start()) + 1:match.start()]
        if _CUT_BEFORE.search(line) or _CUT_AFTER.match(text, match.end()):
            continue
        left, right = match.groups()
        expression = left.replace("×", "*").replace("÷", "/").replace(",", "")
        expression = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", expression)
        stated = _to_float(right)
        try:
            value = safe_eval(expression)
        except ValueError:
            continue
        if stated is not None:
            found.append((left.strip(), stated, value))
    return found


class Arithmetic(Verifier):
    name = "arithmetic"

    def check(self, task, text, ctx):
        found = equations(text)
        wrong = [(e, s, v) for e, s, v in found if not math.isclose(s, v, rel_tol=1e-6, abs_tol=1e-6)]
        if not found or not wrong:
            return Check(self.name, 1.0)
        expression, stated, value = wrong[0]
        return Check(self.name, 1.0 - len(wrong) / len(found),
                     f"You wrote {expression} = {stated:g}, but {expression} = {value:g}. Redo the steps from there.",
                     category="an arithmetic step is wrong")


class Code(Verifier):
    name = "code"

    def check(self, task, text, ctx):
        code = extract_code(text)
        if code is None:
            return Check(self.name, 0.0, "Reply with one ```python code block holding the whole function.",
                         category="no parsable code")
        result = run_tests(code, list(task.public_tests) or ["pass"], timeout_s=ctx.sandbox_timeout_s)
        if result.ok:
            return Check(self.name, 1.0)
        category = ("blocked by the sandbox" if result.blocked else "too slow" if result.timed_out
                    else "fails a test")
        return Check(self.name, result.score, f"Running your code failed: {result.error}. Fix the function.",
                     category=category)


class Auditor(Verifier):
    """The LLM auditor (auditor.py), when the arm has one; without one (no indicators mined) it passes."""

    name = "auditor"

    def check(self, task, text, ctx):
        if ctx.auditor is None:
            return Check(self.name, 1.0)
        return ctx.auditor.audit(task, ctx.agent, text)
