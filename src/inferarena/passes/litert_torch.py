"""PyTorch -> .tflite with litert-torch (Google AI Edge), in its own managed environment.

litert-torch 0.10 pulls xdsl, which caps typing-extensions below 4.13; pydantic 2.14 needs 4.16 or
later, and pip refuses the two together. So the converter lives in a venv inferarena creates and
manages (`inferarena.envs`; created once, a few minutes, under ~/.cache/inferarena/envs), where a
second pip step lifts typing-extensions to 4.16 (xdsl then warns, and works). The conversion runs
there as a job; this process never imports litert-torch.

- `float32`: a dynamic batch dimension, through a replacement lowering for padding (litert-torch's
  own fails on a dynamic batch; see `litert_torch_job`).
- `int8`: static INT8 with per-channel weights, calibrated on the workload (PT2E). The model takes
  and returns int8 at batch 1; the LiteRT session quantizes inputs and dequantizes outputs with
  the file's own scales, and runs larger batches one sample at a time (it says so in its info).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferarena.artifacts import Artifact
from inferarena.envs import Environment, run_job
from inferarena.errors import ConfigError
from inferarena.passes.base import Pass, PassContext

ENVIRONMENT = Environment("litert-torch", ("litert-torch==0.10.0",), after=("typing-extensions>=4.16",))


class LiteRTTorchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["float32", "int8"] = Field(
        "float32", description="float32: as is, dynamic batch; int8: static PT2E INT8 calibrated on the workload.",
        json_schema_extra={"space": ["float32", "int8"]})
    calibration_samples: int = Field(64, ge=1, description="Workload samples that calibrate int8.")


class LiteRTTorchExport(Pass):
    name = "litert_torch_export"
    accepts = ("torch_module",)
    produces = ("tflite",)
    uses_data = True  # only int8 reads the context
    Config = LiteRTTorchConfig

    @classmethod
    def precision(cls, config: BaseModel) -> str | None:
        return "int8" if config.mode == "int8" else None

    def run(self, artifact: Artifact, config: BaseModel, out_dir: Path, context: PassContext | None) -> Artifact:
        out = out_dir / f"model-{config.mode}.tflite"
        args = {"builder": artifact.meta["builder"], "weights": str(artifact.path), "inputs": artifact.meta["inputs"],
                "out": str(out), "mode": config.mode}
        if config.mode == "int8":
            if context is None:
                raise ConfigError("litert_torch_export mode int8 needs calibration data", "run it inside a sweep")
            batches = context.calibration_batches(config.calibration_samples)
            names = [spec["name"] for spec in artifact.meta["inputs"]]
            if len(names) != 1:
                raise ConfigError("litert_torch_export int8 takes single-input models", "use mode float32")
            calibration = out_dir / "calibration.npz"
            np.savez(calibration, **{f"b{i:04d}": batch[names[0]] for i, batch in enumerate(batches)})
            args["calibration"] = str(calibration)
        result = run_job(ENVIRONMENT, "inferarena.passes.litert_torch_job", args)
        if config.mode == "int8":
            Path(args["calibration"]).unlink()
        return Artifact(out, "tflite", {**artifact.meta, "tflite_mode": f"litert-torch {config.mode}",
                                        "converter": result})
