"""Generic tensor workloads for models with plain tensor inputs (e.g. a user's .onnx file).

Inputs come from a user .npz (key = input name, first axis = samples) or are generated from the
graph's input spec; every assumption made while generating is recorded in `notes` and shown.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.config import ShapeStrategy, WorkloadConfig
from inferarena.errors import ModelError
from inferarena.workloads.base import Batch, Workload

ASSUMED_DIM = 16


def _is_symbolic(dim: Any) -> bool:
    return not isinstance(dim, int) or dim <= 0


class TensorWorkload(Workload):
    strategies = (ShapeStrategy.fixed,)

    def __init__(self, arrays: dict[str, np.ndarray], batched: bool, source: str, notes: list[str]):
        # Each array holds all samples: shape (samples, *sample_shape) when batched, else one whole input each.
        self.arrays = arrays
        self.input_names = list(arrays)
        self.max_batch = None if batched else 1
        self.batched = batched
        self.source = source
        self.notes = notes

    @classmethod
    def build(cls, artifact: Artifact, config: WorkloadConfig) -> "TensorWorkload":
        spec = artifact.meta["inputs"]
        name = artifact.meta["name"]
        # A symbolic first axis on every input means the model batches; otherwise each sample is a full input.
        batched = all(s["shape"] and _is_symbolic(s["shape"][0]) for s in spec)
        if config.inputs is not None:
            arrays = _from_npz(config, spec, name, batched)
            return cls(arrays, batched, str(config.inputs), [])
        rng = np.random.default_rng(config.seed)
        count = config.num_samples
        arrays, notes = {}, []
        for s in spec:
            dims = list(s["shape"])
            if batched:
                dims = dims[1:]
            shape = []
            for d in dims:
                if _is_symbolic(d):
                    notes.append(f"input '{s['name']}': dimension '{d}' set to {ASSUMED_DIM}")
                    shape.append(ASSUMED_DIM)
                else:
                    shape.append(d)
            arrays[s["name"]] = _random(rng, s["dtype"], (count, *shape), s["name"], notes)
        notes.append(
            f"no --inputs given: generated {count} random samples from the graph's input spec; "
            "pass an .npz of real inputs for meaningful numbers"
        )
        return cls(arrays, batched, "generated from input spec", notes)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def collate(self, indices: Sequence[int], strategy: ShapeStrategy) -> Batch:
        if self.batched:
            return {name: array[list(indices)] for name, array in self.arrays.items()}
        if len(indices) != 1:
            raise ValueError("this model has a fixed batch dimension; collate one sample at a time")
        return {name: array[indices[0]] for name, array in self.arrays.items()}

    def input_shapes(self, strategy: ShapeStrategy) -> dict[str, list[int]]:
        return {
            name: ([-1, *array.shape[1:]] if self.batched else list(array.shape[1:]))
            for name, array in self.arrays.items()
        }

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "tensor",
            "source": self.source,
            "samples": len(self),
            "inputs": {name: {"dtype": a.dtype.name, "sample_shape": list(a.shape[1:])} for name, a in self.arrays.items()},
            "assumptions": self.notes,
        }


def _random(rng: np.random.Generator, dtype: str, shape: tuple, name: str, notes: list[str]) -> np.ndarray:
    kind = np.dtype(dtype).kind if dtype != "object" else "O"
    if kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if kind in "iu":
        notes.append(f"input '{name}' ({dtype}): random integers in [0, 100)")
        return rng.integers(0, 100, size=shape).astype(dtype)
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    raise ModelError(
        f"input '{name}' has type {dtype}, which inferarena cannot generate",
        "pass real inputs with --inputs FILE.npz",
    )


def _from_npz(config: WorkloadConfig, spec: list[dict], model: str, batched: bool) -> dict[str, np.ndarray]:
    path = config.inputs
    if path.suffix != ".npz":
        raise ModelError(f"{model} takes tensors, but --inputs {path.name} is not an .npz", "pass an .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            given = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ModelError(f"inputs file {path} does not exist", "check the path passed to --inputs") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:  # EOFError: an empty file
        raise ModelError(f"{path} is not a readable .npz ({type(exc).__name__}: {str(exc)[:120]})",
                         "save inputs with numpy.savez") from None
    expected = [s["name"] for s in spec]
    missing = [n for n in expected if n not in given]
    if missing:
        raise ModelError(
            f"{path.name} has no array for input '{missing[0]}' (it has: {', '.join(given) or 'nothing'})",
            f"save arrays named {', '.join(expected)}",
        )
    arrays, counts = {}, set()
    for s in spec:
        array = given[s["name"]]
        want = list(s["shape"]) if batched else [None, *s["shape"]]
        fixed = [(i, d) for i, d in enumerate(want) if i > 0 and not _is_symbolic(d)]
        if array.ndim != len(want) or any(array.shape[i] != d for i, d in fixed):
            shown = ["samples" if i == 0 else d for i, d in enumerate(want)]
            raise ModelError(
                f"input '{s['name']}' has shape {list(array.shape)} but {model} expects {shown}",
                "the first axis indexes samples; the others must match the model",
            )
        if array.size == 0:
            raise ModelError(f"input '{s['name']}' in {path.name} is empty (shape {list(array.shape)})",
                             "save at least one sample, with every axis non-zero")
        try:
            cast = arrays[s["name"]] = array.astype(s["dtype"], casting="same_kind")
        except TypeError:
            raise ModelError(
                f"input '{s['name']}' is {array.dtype} but {model} expects {s['dtype']}",
                f"save it as {s['dtype']}",
            ) from None
        if cast.dtype.kind in "fc" and not np.isfinite(cast).all():  # after the cast: float64 → float16 can overflow
            bad = int((~np.isfinite(cast)).reshape(len(cast), -1).any(axis=1).argmax())
            raise ModelError(f"input '{s['name']}' in {path.name} holds NaN or infinite values as {cast.dtype} "
                             f"(sample {bad} first)", "replace them with finite numbers, or drop those samples")
        counts.add(len(array))
    if len(counts) != 1:
        raise ModelError(f"the arrays in {path.name} hold different sample counts {sorted(counts)}", "give each the same first axis")
    return {n: a[: config.num_samples] for n, a in arrays.items()}
