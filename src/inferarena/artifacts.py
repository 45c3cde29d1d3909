"""A model artifact: a path plus the format it is in. Everything downstream dispatches on the format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    # The pipeline that produced this artifact from the source, e.g. ("export_onnx",).
    lineage: tuple[str, ...] = ()

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
