from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from inferarena.artifacts import Artifact


class Pass(ABC):
    """A pure transformation: (artifact, config) -> new artifact under `out_dir`.

    Declares the formats it `accepts` and `produces`; its config model declares each parameter with help.
    """

    name: ClassVar[str]
    accepts: ClassVar[tuple[str, ...]]
    produces: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[BaseModel]]

    @abstractmethod
    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path) -> Artifact: ...

    def cached_run(self, artifact: Artifact, config: BaseModel, cache_dir: Path) -> Artifact:
        """Run once per (input content, config); later calls return the stored result."""
        key = f"{artifact.content_hash()}-{_hash(self.name, config.model_dump_json())}"
        out_dir = cache_dir / self.name / key
        marker = out_dir / "artifact.json"
        if marker.is_file():
            stored = json.loads(marker.read_text())
            return Artifact(out_dir / stored["file"], stored["format"], stored["meta"], tuple(stored["lineage"]))
        tmp = out_dir.with_name(key + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        result = self.run(artifact, config, tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        file = result.path.relative_to(tmp)
        lineage = (*artifact.lineage, self.name)
        marker.write_text(json.dumps({"file": str(file), "format": result.format, "meta": result.meta, "lineage": lineage}))
        return Artifact(out_dir / file, result.format, result.meta, lineage)


def _hash(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
