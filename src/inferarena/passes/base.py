from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from inferarena.artifacts import Artifact, PassRun
from inferarena.errors import ConfigError
from inferarena.evaluators.fidelity import Fidelity, score
from inferarena.fsutil import private_dir
from inferarena.workloads.base import Workload


@dataclass
class PassContext:
    """What data-driven passes may use: calibration samples and a fidelity check against the reference.

    Calibration samples come from the end of the workload and evaluation samples from its start, so a
    pass is never judged on the data it was calibrated on.
    """

    workload: Workload
    reference_path: str | None
    eval_indices: list[int]
    threads: int
    fingerprint: str  # hash of the workload config: part of every data-driven pass's cache key
    batch_size: int = 8  # the batch the measurement checks fidelity at (padding changes dynamic INT8 ranges)

    @property
    def calibration_available(self) -> int:
        """Samples beyond the evaluation set: the most a pass may calibrate on."""
        return len(self.workload) - len(self.eval_indices)

    def calibration_batches(self, count: int) -> list[dict[str, np.ndarray]]:
        available = self.calibration_available
        if count > available:
            raise ConfigError(
                f"calibration needs {count} samples but the workload has {available} beyond the evaluation set",
                "lower the pass's calibration_samples or raise workload.num_samples",
            )
        strategy = self.workload.strategies[-1]
        return [self.workload.collate([len(self.workload) - 1 - i], strategy) for i in range(count)]

    def fidelity(self, session: Any, limit: int | None = None, every_shape: bool = True) -> Fidelity:
        """Fidelity of a loaded Session on the evaluation samples (the first `limit` of them), batched as
        the measurement batches them; the worst over the workload's shape strategies, since padding
        changes what a quantized model computes and a budget must hold for every variant."""
        from inferarena.outputs import outputs

        indices = self.eval_indices[:limit]
        reference = np.load(self.reference_path, allow_pickle=False)[: len(indices)]
        found = [score(outputs(session, self.workload, indices, strategy, batch=self.batch_size), reference)
                 for strategy in (self.workload.strategies if every_shape else self.workload.strategies[-1:])]
        return min(found, key=lambda f: f.cos_min)


class Pass(ABC):
    """A pure transformation: (artifact, config, context) -> new artifact under `out_dir`.

    Declares the formats it `accepts` and `produces`; its config model declares each parameter with
    its help and search space. `uses_data` passes see calibration and fidelity through the context.
    """

    name: ClassVar[str]
    accepts: ClassVar[tuple[str, ...]]
    produces: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[BaseModel]]
    uses_data: ClassVar[bool] = False
    # A pure format conversion that runs with its default config: the planner inserts it where a runtime
    # or pass needs another format (chains allowed, e.g. torch_module -> tf_savedmodel -> tflite).
    converts: ClassVar[bool] = False
    # Changes what the model computes on purpose (pruning): judged by fidelity.min_cos_lossy, like int8.
    lossy: ClassVar[bool] = False
    # Bumped when a pass's output changes for the same input and config, so old cache entries are not reused.
    version: ClassVar[str] = ""

    @abstractmethod
    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact: ...

    @classmethod
    def output_format(cls, input_format: str) -> str:
        """The format the pass writes for an input of this format: its first `produces`, unless it keeps the
        input's (a pass that marks how a model is run, whatever its format)."""
        return cls.produces[0]

    @classmethod
    def precision(cls, config: BaseModel) -> str | None:
        """The precision the output runs at, if this pass changes it (e.g. "int8")."""
        return None

    @classmethod
    def unsupported_on(cls, config: BaseModel, device: str, gpu: Any = None) -> str | None:
        """Why what this pass makes cannot run on `device` (`gpu`: the hardware.Gpu of a cuda run, if known),
        or None. The plan skips such a pipeline with the reason (FP8 needs a Hopper-class GPU)."""
        return None

    def cached_run(self, artifact: Artifact, config: BaseModel, cache_dir: Path,
                   context: PassContext | None = None) -> Artifact:
        """Run once per (input content, config, data); later calls return the stored result."""
        data = context.fingerprint if (self.uses_data and context) else ""
        key = f"{artifact.content_hash()}-{_hash(self.name + self.version, config.model_dump_json(), data)}"
        out_dir = cache_dir / self.name / key
        marker = out_dir / "artifact.json"
        if marker.is_file():
            stored = json.loads(marker.read_text())
            meta = {**stored["meta"], "cached": True}
            return Artifact(out_dir / stored["file"], stored["format"], meta,
                            tuple(PassRun.of(node) for node in stored["lineage"]))
        tmp = out_dir.with_name(key + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        private_dir(tmp)
        result = self.run(artifact, config, tmp, context)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        file = result.path.relative_to(tmp)
        lineage = (*artifact.lineage, PassRun(self.name, config.model_dump(mode="json"), str(artifact.path),
                                              str(out_dir / file)))
        # FLOPs are the math of the original graph: count them there, not on fused or quantized ops.
        meta = {"flops_source": str(artifact.meta.get("flops_source", artifact.path)) if artifact.format == "onnx" else None,
                **{k: v for k, v in result.meta.items() if k != "cached"}}
        if meta["flops_source"] is None:
            del meta["flops_source"]
        marker.write_text(json.dumps({"file": str(file), "format": result.format, "meta": meta,
                                      "lineage": [node.as_dict() for node in lineage]}))
        return Artifact(out_dir / file, result.format, {**meta, "cached": False}, lineage)


def _hash(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
