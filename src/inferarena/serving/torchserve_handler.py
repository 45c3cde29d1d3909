"""TorchServe handler (packed into the .mar; runs in TorchServe's worker): our ONNX model on the batch
the frontend formed. Each request's body is `{"inputs": {name: nested list}}` with a batch axis;
requests are stacked, run once, and the outputs split back per request as `{name: nested list}`."""

from __future__ import annotations

import json

import numpy as np

from inferarena.serving.backend import OrtModel

_model: OrtModel | None = None


def handle(data, context):
    global _model
    if _model is None:
        _model = OrtModel(context.system_properties.get("model_dir"))
    if data is None:
        return None
    requests = []
    for row in data:
        body = row.get("body") if row.get("body") is not None else row.get("data")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        requests.append({name: np.asarray(value) for name, value in body["inputs"].items()})
    sizes = [len(next(iter(r.values()))) for r in requests]
    stacked = {name: np.concatenate([r[name] for r in requests]) for name in requests[0]}
    outputs = _model.predict(stacked)
    answers, start = [], 0
    for size in sizes:
        answers.append({name: value[start : start + size].tolist() for name, value in outputs.items()})
        start += size
    return answers
