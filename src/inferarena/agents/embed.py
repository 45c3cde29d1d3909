"""Sentence embeddings for the auditor's indicator retrieval, from the bundled all-MiniLM-L6-v2 running
as the arena's own recommended variant: the balanced pick of the latest MiniLM run in the results
store (what `make demo` measures), loaded on its runtime with its knobs. Without such a run, or when
its artifact is gone, it runs the bundled model on torch at FP32, and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inferarena import models, registry
from inferarena.config import ShapeStrategy, WorkloadConfig


class Embedder:
    """`pick`: the stored variant to load (`stored_pick`'s answer, as the development phase recorded it), so
    that an arm's job embeds with the same variant as the phase that mined the indicators; None: look it up."""

    def __init__(self, db: str | None = None, pick: list | tuple | None = None):
        from inferarena.workloads.text import TextWorkload

        self.source = models.resolve("minilm")
        self.workload = TextWorkload.build(self.source, WorkloadConfig(num_samples=1))
        self.note = ""
        picked = pick if pick is not None else stored_pick(db) if db is not None else None
        self.pick = list(picked) if picked is not None else None
        self.session = None
        if picked is not None:
            try:
                self.session = self._load(*picked[1:5])
                self.note = f"indicators retrieved with MiniLM on the arena's balanced pick {picked[0]} (run {picked[-1]})"
            except Exception as exc:  # noqa: BLE001 - a stale artifact: fall back, and say why
                self.note = f"the stored MiniLM pick {picked[0]} did not load ({str(exc)[:80]}); "
        if self.session is None:
            self.session = self._load("torch", "fp32", {}, None)
            self.note += ("indicators retrieved with MiniLM on torch/fp32: no MiniLM run in the results store "
                          "(`make demo` makes one)" if not self.note else "using torch/fp32")

    def _load(self, runtime_name: str, precision: str, knobs: dict, artifact_path: str | None):
        runtime = registry.load(registry.RUNTIMES, runtime_name)
        artifact = models.resolve(artifact_path) if artifact_path else self.source
        return runtime().load(artifact, precision, runtime.validate_knobs(knobs),
                              self.workload.input_shapes(ShapeStrategy.dynamic))

    def __call__(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings, one row per text (the model pools and normalises)."""
        rows = []
        for start in range(0, len(texts), 16):
            batch = self.workload.encode_texts(texts[start:start + 16], ShapeStrategy.dynamic)
            out = self.session.predict(batch)
            rows.append(np.asarray(next(iter(out.values())), dtype=np.float32))
        found = np.concatenate(rows) if rows else np.zeros((0, 384), np.float32)
        return found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)

    def close(self) -> None:
        self.session.close()


def stored_pick(db: str):
    """(label, runtime, load precision, knobs, artifact path, run id) of the latest MiniLM run's balanced pick."""
    from inferarena.recommend import recommend
    from inferarena.store import is_url, open_store

    if not is_url(db) and not Path(db).is_file():
        return None
    store = open_store(db)
    try:
        for row in store.runs():
            if row["status"] != "complete" or "MiniLM" not in str(row["model"]):
                continue
            run = store.load_run(row["run_id"])
            if run is None or run.kind != "predict":
                continue
            rec = recommend(run, {}, "balanced")
            pick = next((v for v in run.variants if v.name == rec.variant), None)
            if pick is None or pick.shape == "fixed":
                continue
            # A pipeline's output (a quantized graph) is loaded at FP32, as the plan loads it.
            precision = "fp32" if pick.pipeline else pick.precision
            return pick.name, pick.runtime, precision, pick.knobs, pick.artifact, run.run_id
    finally:
        store.close()
    return None
