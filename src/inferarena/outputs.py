"""A Session's primary output over workload samples, batched as the measurement batches them.

Low on purpose: both the worker (the FP32 reference, fidelity checks) and data-driven passes (their
accuracy budgets) need it, and a pass must not import the worker.
"""

from __future__ import annotations

import numpy as np

from inferarena.config import ShapeStrategy
from inferarena.runtimes.base import Session
from inferarena.workloads.base import Workload


def outputs(session: Session, workload: Workload, indices: list[int], strategy: ShapeStrategy, batch: int) -> np.ndarray:
    """The primary (first) output for `indices`, one row per sample, in order."""
    step = workload.batch_limit(batch)
    rows = []
    for start in range(0, len(indices), step):
        result = session.predict(workload.collate(indices[start : start + step], strategy))
        rows.append(np.asarray(next(iter(result.values())), dtype=np.float32))
    return np.concatenate(rows)
