"""Output fidelity against the FP32 reference: per-sample cosine (mean, min) and max abs difference.

Works on any output: each sample's output is flattened before comparing, so nothing here is
text-specific. For classifiers (`classes=True`) it adds top-1 and top-5 agreement: the share of
samples whose top class is the reference's, and whose top class is among the reference's top five.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Fidelity:
    cos_mean: float
    cos_min: float
    max_abs_diff: float
    samples: int
    top1_agreement: float | None = None
    top5_agreement: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (rows flattened)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    norms = na * nb
    # Two all-zero rows agree; one all-zero row against a non-zero one does not.
    return np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), np.where(na == nb, 1.0, 0.0))


def score(outputs: np.ndarray, reference: np.ndarray, classes: bool = False) -> Fidelity:
    """`outputs` and `reference` hold one row per sample, in the same order."""
    if outputs.shape != reference.shape:
        raise ValueError(f"output shape {outputs.shape} differs from the reference's {reference.shape}")
    a = outputs.reshape(len(outputs), -1).astype(np.float64)
    b = reference.reshape(len(reference), -1).astype(np.float64)
    cos = cosines(a, b)
    agreement = {}
    if classes:
        top = a.argmax(axis=1)
        reference_top5 = np.argsort(-b, axis=1)[:, :5]
        agreement = {"top1_agreement": round(float((top == reference_top5[:, 0]).mean()), 6),
                     "top5_agreement": round(float((reference_top5 == top[:, None]).any(axis=1).mean()), 6)}
    return Fidelity(
        cos_mean=round(float(cos.mean()), 6),
        cos_min=round(float(cos.min()), 6),
        max_abs_diff=float(np.abs(a - b).max()),
        samples=len(a),
        **agreement,
    )
