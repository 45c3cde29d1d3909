"""How a job runs: the launcher axis. The orchestrator hands every build, reference and measurement
round to a launcher and gets an `Outcome` back, whatever happened inside.

- `spawn` (the default): a fresh process per job, with a timeout, so a segfault, a hang or an OOM
  is that job's failure and every round starts from a clean memory and thread state.
- `inline`: in this process, for unit tests and `--debug` (a breakpoint or a traceback lands in
  the job itself). No timeout, and a crash takes the caller with it.

A launcher is one method, `run(fn, args, timeout_s, log_path) -> Outcome`, so a cluster executor
(Ray tasks) fits the same seam.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar

from inferarena import registry
from inferarena.errors import ConfigError
from inferarena.worker import Outcome, failure, run_isolated


class Launcher(ABC):
    name: ClassVar[str]

    @abstractmethod
    def run(self, fn: Callable, args: tuple, timeout_s: float, log_path: Path | None = None) -> Outcome:
        """Run `fn(*args)`; its value, or its failure in one line, comes back as an Outcome."""


class Spawn(Launcher):
    name = "spawn"

    def run(self, fn, args, timeout_s, log_path=None):
        return run_isolated(fn, args, timeout_s, log_path)


class Inline(Launcher):
    name = "inline"

    def run(self, fn, args, timeout_s, log_path=None):
        try:
            return Outcome(True, value=fn(*args))
        except Exception as exc:  # noqa: BLE001 - the job's failure, reported like a worker's
            error, detail = failure(exc)
            return Outcome(False, error=error, detail=detail)


def get(name: str) -> Launcher:
    if name not in registry.LAUNCHERS:
        raise ConfigError(f"unknown launcher {name!r}", f"choose from {', '.join(registry.LAUNCHERS)}")
    return registry.load(registry.LAUNCHERS, name)()
