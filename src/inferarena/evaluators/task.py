"""Task accuracy: a real task metric for each variant, reported next to the FP32 reference's score.

Fidelity says how far a variant's outputs drift from the reference; a task metric says whether that
drift matters to anyone. An evaluator owns its inputs and its metric, and the caller owns the model:
it passes an `embed` function, so no evaluator knows which runtime or tokenizer made the vectors.
Users add one by subclassing `Evaluator` and registering it as `"name": "module:Class"`.

Example:
    evaluator = registry.load(registry.EVALUATORS, "lee_docsim")()
    evaluate(evaluator, embed)  # {"name": "lee_docsim", "metric": "spearman", "value": 0.504491, "n": 50}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

DEFAULT_DATA_DIR = Path.home() / ".cache" / "inferarena" / "eval-data"


class Evaluator(ABC):
    """One task metric over a fixed list of texts.

    Building one does no I/O, so listing or configuring evaluators is free: data is read (and, when
    allowed, downloaded into `data_dir`) on the first call to `inputs()`. `task` is matched against
    the artifact's `meta["task"]`, so an evaluator only runs on models it makes sense for.
    """

    name: ClassVar[str]
    task: ClassVar[str]
    metric: ClassVar[str]
    # Scored on every model of its task when the config names no evaluators.
    default: ClassVar[bool] = False

    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR, download: bool = True):
        self.data_dir = data_dir
        self.download = download

    def inputs(self) -> list:
        """The raw inputs (texts, photos) in the order `score` expects their rows; the workload
        preprocesses them as it does its own samples."""
        return self.texts()

    def texts(self) -> list[str]:
        """For text evaluators: the texts to embed."""
        raise NotImplementedError(f"{type(self).__name__} defines neither inputs() nor texts()")

    @abstractmethod
    def score(self, embeddings: np.ndarray) -> float:
        """The metric, from one L2-normalized row per text."""


def evaluate(evaluator: Evaluator, embed: Callable[[list[str]], np.ndarray], batch_size: int = 64) -> dict:
    """Embed the evaluator's texts in batches and score them; `n` is the number of texts embedded.

    Rows are L2-normalized here, so a plugin's `score` can take dot products as cosines whatever
    the model's pooling did.
    """
    texts = evaluator.inputs()
    batches = [np.asarray(embed(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
    rows = np.concatenate([b.reshape(len(b), -1) for b in batches]).astype(np.float64)
    if len(rows) != len(texts):
        raise ValueError(f"embed returned {len(rows)} rows for {len(texts)} texts")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows = rows / np.where(norms > 0, norms, 1.0)
    value = float(evaluator.score(rows))
    return {"name": evaluator.name, "metric": evaluator.metric, "value": round(value, 6), "n": len(texts)}


def spearman(predicted: np.ndarray, human: np.ndarray) -> float:
    """Rank correlation: only the order of similarities is compared, as their scales differ."""
    from scipy.stats import spearmanr

    return float(spearmanr(predicted, human)[0])
