"""How a job runs: the launcher axis. The orchestrator hands every build, reference and measurement
round to a launcher and gets an `Outcome` back, whatever happened inside.

- `spawn` (the default): a fresh process per job, with a timeout, so a segfault, a hang or an OOM
  is that job's failure and every round starts from a clean memory and thread state.
- `inline`: in this process, for unit tests and `--debug` (a breakpoint or a traceback lands in
  the job itself). No timeout, and a crash takes the caller with it.
- `ray` (`launchers/ray.py`): each job a Ray task on a cluster's nodes, a measurement holding a whole node.

A launcher is one method, `run(fn, args, timeout_s, log_path) -> Outcome`, plus what a cluster adds:
`slots` (how many variants may be measured at once: one per node), `lane()` (a launcher that keeps
one variant's rounds on one machine), `close()` and `describe()` (what the run's environment records).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar

from inferarena import registry
from inferarena.errors import ConfigError
from inferarena.hardware import node_info
from inferarena.worker import Outcome, failure, run_isolated


class PlaceLost(Exception):
    """The machine a lane's earlier rounds ran on is gone: the variant is measured again from its first
    round elsewhere (rounds from two machines are never merged)."""


class Launcher(ABC):
    name: ClassVar[str]
    slots: int = 1  # variants measured at once
    retries: int = 0  # times a variant is measured again from its first round when its machine is lost

    @abstractmethod
    def run(self, fn: Callable, args: tuple, timeout_s: float, log_path: Path | None = None) -> Outcome:
        """Run `fn(*args)`; its value, or its failure in one line, comes back as an Outcome."""

    def lane(self, node: dict | None = None) -> Launcher:
        """A launcher for one variant's measurement rounds: they all run on the same machine (`node`, where
        earlier rounds ran), and that machine is the variant's alone while a round runs. Here there is one."""
        return self

    def describe(self) -> dict:
        """What the run's environment records about where its jobs ran."""
        return {"launcher": self.name}

    def close(self) -> None:
        """Release what the launcher started (a local cluster); nothing for a process launcher."""


class Spawn(Launcher):
    name = "spawn"

    def run(self, fn, args, timeout_s, log_path=None):
        outcome = run_isolated(fn, args, timeout_s, log_path)
        outcome.node = node_info()
        return outcome


class Inline(Launcher):
    name = "inline"

    def run(self, fn, args, timeout_s, log_path=None):
        try:
            return Outcome(True, value=fn(*args), node=node_info())
        except Exception as exc:  # noqa: BLE001 - the job's failure, reported like a worker's
            error, detail = failure(exc)
            return Outcome(False, error=error, detail=detail, node=node_info())


def get(name: str, **options) -> Launcher:
    """The launcher registered as `name`, built with its options (the Ray launcher's `address`)."""
    if name not in registry.LAUNCHERS:
        raise ConfigError(f"unknown launcher {name!r}", f"choose from {', '.join(registry.LAUNCHERS)}")
    return registry.load(registry.LAUNCHERS, name)(**options)
