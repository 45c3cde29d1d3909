"""Errors a user can cause. Each names the problem and the fix; the CLI prints them as one line."""

from __future__ import annotations


class InferarenaError(Exception):
    """Base for problems the user can fix. `fix` tells them how."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}. Fix: {fix}")


class ConfigError(InferarenaError):
    """An invalid run configuration (YAML, CLI option or knob)."""


class ModelError(InferarenaError):
    """A model that is missing, corrupt, or cannot be fed."""


class RuntimeUnavailable(InferarenaError):
    """A runtime whose pip extra is not installed."""


class StoreError(InferarenaError):
    """The results database cannot be opened or written."""
