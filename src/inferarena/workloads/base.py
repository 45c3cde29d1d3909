from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from inferarena.config import ShapeStrategy

Batch = dict[str, np.ndarray]


class Workload(ABC):
    """A list of samples plus the rule that turns a set of them into one batch.

    Picklable, so it travels to worker processes as is.
    """

    input_names: list[str]
    strategies: tuple[ShapeStrategy, ...]
    # Whether variant names carry the shape strategy (not when a workload has only one way to shape).
    shape_in_name: bool = True
    # Largest batch the model accepts; None means any.
    max_batch: int | None = None
    # What was assumed while building it, shown to the user.
    notes: list[str]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def collate(self, indices: Sequence[int], strategy: ShapeStrategy) -> Batch: ...

    @abstractmethod
    def input_shapes(self, strategy: ShapeStrategy) -> dict[str, list[int]]:
        """Shape hints per input for this strategy, -1 for a dimension that varies."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """A summary stored with the run (source, counts, length distribution)."""

    def length(self, index: int) -> int:
        """How long sample `index` is (tokens for text); batching by length groups similar ones."""
        return 1

    def unpadded_shapes(self, index: int) -> tuple | None:
        """Sample `index`'s input shapes with no padding, as ((name, shape), ...), for counting the useful
        part of the work; None where samples are never padded (images, fixed tensors)."""
        return None

    def length_order(self) -> list[int]:
        """Sample indices, shortest first: the order in which `bucketed` batches are formed."""
        return sorted(range(len(self)), key=self.length)

    def serving_order(self, strategy: ShapeStrategy) -> list[int]:
        """The order Offline serves samples in: by length, except under `fixed` (every sample is padded
        to the maximum anyway)."""
        return list(range(len(self))) if strategy is ShapeStrategy.fixed else self.length_order()

    def encode_texts(self, texts: list[str], strategy: ShapeStrategy = ShapeStrategy.dynamic) -> Batch | None:
        """Arbitrary texts as one batch, for task evaluators; None where the model does not take text."""
        return None

    def encode(self, items: list[Any], strategy: ShapeStrategy = ShapeStrategy.dynamic) -> Batch | None:
        """An evaluator's raw inputs (texts, photos) as one batch, preprocessed as this workload does."""
        return self.encode_texts(items, strategy)

    def batch_limit(self, wanted: int) -> int:
        return wanted if self.max_batch is None else min(wanted, self.max_batch)
