"""The model code that runs inside every server: one ONNX Runtime session, and a log of the batch
sizes the server actually formed.

Each server's own glue (MLServer runtime, TorchServe handler, PyTriton callable) calls
`OrtModel.predict` with whatever batch the server assembled; every call appends its batch size to
`batches.log` in the served folder (one short line, O_APPEND), which the benchmark reads to report
the average batch the server formed under load. Only numpy and onnxruntime are imported here, so
it loads in each server's own environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class OrtModel:
    def __init__(self, folder: str | Path):
        import onnxruntime as ort

        self.folder = Path(folder)
        spec = json.loads((self.folder / "served.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(spec.get("threads") or 0)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if spec.get("device", "cpu") == "cuda":  # never silently on the CPU when the GPU was asked for
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("serve-bench --device cuda: this server's onnxruntime has no CUDA execution "
                                   "provider (its environment has the CPU build; onnxruntime-gpu has it)")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.folder / "model.onnx"), options, providers=providers)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.dtypes = {name: np.dtype(t) for name, t in spec["dtypes"].items()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        # The staged folder's log, even where the server copies the model elsewhere (TorchServe's .mar).
        log = Path(spec.get("batch_log") or self.folder / "batches.log")
        self._log = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def signature(self) -> tuple[list[tuple[str, np.dtype, int]], list[tuple[str, np.dtype, int]]]:
        """(name, dtype, rank) of each input and output, for servers that declare tensors up front."""
        types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32, "tensor(float16)": np.float16, "tensor(bool)": np.bool_}

        def describe(values):
            return [(v.name, np.dtype(types.get(v.type, np.float32)), len(v.shape)) for v in values]

        return describe(self.session.get_inputs()), describe(self.session.get_outputs())

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {name: np.asarray(value, dtype=self.dtypes[name]) for name, value in inputs.items()}
        outputs = self.session.run(self.output_names, feeds)
        os.write(self._log, f"{len(next(iter(feeds.values())))}\n".encode())
        return dict(zip(self.output_names, outputs, strict=True))


def read_batches(folder: str | Path) -> list[int]:
    path = Path(folder) / "batches.log"
    return [int(line) for line in path.read_text().split()] if path.is_file() else []
