"""What an interrupted `inferarena agents` keeps: every finished task of an arm, and the development phase.

An arm of 100 GSM8K tasks runs for an hour or more, and a stop (Ctrl-C, a crash, the end of a session) used to
lose all of it, since a run stores an arm only when it finishes. Now each task's outcome is appended to
`.inferarena/agents-N/` beside the arm's log (`llama_cpp_q4_k_m_baseline.tasks.jsonl`) as it finishes (its conversation, usage, wall time and energy),
and the development phase to `VARIANT-dev.json`. `--resume` reuses both, then runs only what is missing. The
first line of each file is a key over everything that decides its content (the run's config, the workflow,
the variant, the arm and the development result): a file written under other settings is ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from inferarena.agents.arms import Development, Usage
from inferarena.agents.execute import Message, TaskRun
from inferarena.agents.tasks import Task
from inferarena.config import digest


def key(*parts: Any) -> str:
    """Numpy values count as the lists they save as, so a reloaded development result keys the same."""
    return digest(parts, _plain)


def encode(run: TaskRun) -> dict[str, Any]:
    return asdict(run)


def decode(data: dict[str, Any]) -> TaskRun:
    task = dict(data["task"])
    task["tests"], task["public_tests"] = tuple(task.get("tests") or ()), tuple(task.get("public_tests") or ())
    return TaskRun(task=Task(**task), answer=data["answer"], correct=data["correct"],
                   messages=[Message(**m) for m in data["messages"]],
                   usage={name: Usage(**u) for name, u in data["usage"].items()}, seconds=data["seconds"],
                   fallback=data.get("fallback", False))


class TaskLog:
    """The finished tasks of one arm: task id -> (its run, wall seconds, joules or None)."""

    def __init__(self, path: Path | None, arm_key: str):
        self.path, self.key = path, arm_key
        self.done: dict[str, tuple[TaskRun, float, float | None]] = {}
        if path is None or not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or json.loads(lines[0]).get("key") != arm_key:
            path.unlink()  # written under other settings: start over
            return
        kept = lines[:1]
        for line in lines[1:]:
            try:
                row = json.loads(line)
                self.done[row["run"]["task"]["id"]] = (decode(row["run"]), row["wall_s"], row.get("energy_j"))
            except (ValueError, KeyError, TypeError):
                # a line cut short by the stop: the tasks before it stand, and it goes
                path.write_text("".join(f"{k}\n" for k in kept), encoding="utf-8")
                break
            kept.append(line)

    def add(self, run: TaskRun, wall_s: float, energy_j: float | None) -> None:
        if self.path is None:
            return
        if not self.path.is_file() or self.path.stat().st_size == 0 or not self.done:
            self.path.write_text(json.dumps({"key": self.key}) + "\n", encoding="utf-8")
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"run": encode(run), "wall_s": wall_s, "energy_j": energy_j}) + "\n")
        self.done[run.task.id] = (run, wall_s, energy_j)


def load_development(path: Path, dev_key: str) -> Development | None:
    """The saved development result, if it was made under the same settings."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return Development.of(saved["dev"]) if saved.get("key") == dev_key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_development(path: Path, dev_key: str, dev: Development) -> None:
    path.write_text(json.dumps({"key": dev_key, "dev": dev.as_dict()}, default=_plain), encoding="utf-8")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if not isinstance(value, tuple) else list(value)
    return str(value)
