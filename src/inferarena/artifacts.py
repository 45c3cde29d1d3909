"""A model artifact: a path plus the format it is in. Everything downstream dispatches on the format."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PassRun:
    """One pass applied: a node of a model's lineage, pointing at the artifact it started from (`parent`)
    and the one it made (`output`), as Olive's FootprintNode does. An artifact's `lineage` is the chain of
    these from its source; a measured variant keeps the nodes its build applied (`VariantResult.passes`),
    with whether each came from the cache and how long it took there."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    output: str = ""
    cached: bool = False
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored shape (`build_json`, the bundle's and the --json's lineage): the pass under "pass"."""
        out = asdict(self)
        return {"pass": out.pop("name"), **out}

    @classmethod
    def of(cls, value: "PassRun | dict | str") -> "PassRun":
        """A node from its stored shape; a bare name is how lineage was kept before (names only)."""
        if isinstance(value, PassRun):
            return value
        if isinstance(value, str):
            return cls(value)
        data = dict(value)
        name = data.pop("pass", None) or data.pop("name")
        return cls(name, **{k: v for k, v in data.items() if k in ("config", "parent", "output", "cached", "seconds")})


@dataclass(frozen=True)
class Artifact:
    """A model on disk.

    `format` is what runtimes and passes match on (`hf_encoder`, `onnx`, ...). `meta` carries what
    the workload and evaluator need: `input_kind` (`text` or `tensor`), `task`, `tokenizer`, and for
    tensor models the input spec.
    """

    path: Path
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    # The passes that made this artifact from its source, in order (each node's parent is the one before's output).
    lineage: tuple[PassRun, ...] = ()

    def content_hash(self) -> str:
        """A hash of the files' bytes: the cache key for passes applied to this artifact."""
        digest = hashlib.sha256(self.format.encode())
        files = [self.path] if self.path.is_file() else sorted(p for p in self.path.rglob("*") if p.is_file())
        for file in files:
            digest.update(str(file.relative_to(self.path) if file != self.path else file.name).encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()[:16]
