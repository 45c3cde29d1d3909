"""The model inside a bundle written by `inferarena deploy`, for the servers that run Python: MLServer's
runtime, TorchServe's handler, Triton's python backend and the docker target's plain server.

It loads the artifact with the runtime the variant was measured on, with the knobs it was measured with,
as model.json beside it says (threads are per instance: a server runs one instance per measured stream).
Copied verbatim into each bundle, so it imports numpy and that one runtime, never inferarena.

    model = BundleModel("path/to/bundle/folder")
    outputs = model.predict({"input_ids": ids, "attention_mask": mask})
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np


class BundleModel:
    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else Path(__file__).resolve().parent
        self.spec = json.loads((self.folder / "model.json").read_text())
        self.dtypes = {t["name"]: np.dtype(t["dtype"]) for t in self.spec["inputs"]}
        self.output_names = [t["name"] for t in self.spec["outputs"]]
        load = {"onnxruntime": _onnxruntime, "openvino": _openvino, "torch": _torch}[self.spec["runtime"]]
        self._run = load(self.folder / self.spec["file"], self.spec)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = sorted(set(self.dtypes) - set(inputs))
        if missing:
            raise ValueError(f"missing inputs: {', '.join(missing)} (the model takes {', '.join(self.dtypes)})")
        return self._run({name: np.asarray(inputs[name], dtype=dtype) for name, dtype in self.dtypes.items()})


def _onnxruntime(path: Path, spec: dict):
    import onnxruntime as ort

    knobs = spec["knobs"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(spec["threads"])
    options.inter_op_num_threads = int(knobs.get("inter_op_threads") or 1)
    options.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if knobs.get("execution_mode") == "parallel"
                              else ort.ExecutionMode.ORT_SEQUENTIAL)
    options.graph_optimization_level = {
        "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }.get(knobs.get("graph_optimization_level"), ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "0" if knobs.get("allow_spinning") is False else "1")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(names, feeds)))


def _openvino(path: Path, spec: dict):
    import openvino as ov

    knobs = spec["knobs"]
    config = {"PERFORMANCE_HINT": knobs.get("performance_hint") or "LATENCY",
              "INFERENCE_NUM_THREADS": int(spec["threads"])}
    if spec.get("inference_precision"):  # what the measured session applied (f32, bf16)
        config["INFERENCE_PRECISION_HINT"] = spec["inference_precision"]
    if knobs.get("streams"):
        config["NUM_STREAMS"] = int(knobs["streams"])
    if knobs.get("pinning") is not None:
        config["ENABLE_CPU_PINNING"] = bool(knobs["pinning"])
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    outputs = [(port, port.get_any_name()) for port in compiled.outputs]
    local = threading.local()  # an infer request serves one call at a time: one per server thread

    def run(feeds):
        request = getattr(local, "request", None) or compiled.create_infer_request()
        local.request = request
        result = request.infer(feeds)
        return {name: np.array(result[port]) for port, name in outputs}

    return run


def _torch(path: Path, spec: dict):
    """An encoder folder as the torch runtime ran it: mean pooling over the mask, then L2 normalisation."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    torch.set_num_threads(int(spec["threads"]))
    encoder = AutoModel.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False).eval()
    bf16 = spec.get("precision") == "bf16"
    output = spec["outputs"][0]["name"]

    def run(feeds):
        tensors = {name: torch.from_numpy(value) for name, value in feeds.items()}
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = encoder(**tensors).last_hidden_state
            mask = tensors["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            embedding = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return {output: embedding.float().numpy()}

    return run
