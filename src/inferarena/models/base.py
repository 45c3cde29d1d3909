from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from inferarena.artifacts import Artifact


class ModelSource(ABC):
    """Where a model comes from. `claims` decides from the spec alone; `load` checks and describes it."""

    bundled: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def claims(cls, spec: str) -> bool: ...

    @abstractmethod
    def load(self, spec: str) -> Artifact: ...
