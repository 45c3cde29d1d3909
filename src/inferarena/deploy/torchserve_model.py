"""TorchServe handler for a bundle written by `inferarena deploy` (copied as handler.py and packed into the
.mar with bundle_model.py, model.json and the artifact). A request's body is a KServe v2 JSON request
({"inputs": [{"name", "shape", "datatype", "data"}]}) and its answer a v2 response ({"outputs": [...]}).
Requests TorchServe batched together run as one batch where their shapes agree, one by one otherwise."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_model import BundleModel  # noqa: E402 - packed beside this file

V2 = {"FP32": "float32", "FP16": "float16", "FP64": "float64", "INT64": "int64", "INT32": "int32",
      "INT16": "int16", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}
NAMES = {np.dtype(v): k for k, v in V2.items()}


class BundleHandler:
    def initialize(self, context):
        self.model = BundleModel(Path(context.system_properties["model_dir"]))

    def handle(self, data, context):
        requests = [self._decode(item) for item in data]
        answers = [None] * len(requests)
        groups = {}  # requests whose inputs agree on every dimension but the batch run as one batch
        for index, inputs in enumerate(requests):
            if isinstance(inputs, Exception):
                answers[index] = {"error": str(inputs)}
                continue
            key = tuple((name, value.shape[1:], value.dtype.str) for name, value in sorted(inputs.items()))
            groups.setdefault(key, []).append(index)
        for members in groups.values():
            batch = {name: np.concatenate([requests[i][name] for i in members]) for name in requests[members[0]]}
            try:
                outputs = self.model.predict(batch)
            except Exception as exc:  # the group's requests answer with the error; others are served
                for i in members:
                    answers[i] = {"error": str(exc)}
                continue
            start = 0
            for i in members:
                size = len(next(iter(requests[i].values())))
                answers[i] = {"outputs": [{"name": name, "shape": list(value[start:start + size].shape),
                                           "datatype": NAMES.get(value.dtype, "FP32"),
                                           "data": value[start:start + size].ravel().tolist()}
                                          for name, value in outputs.items()]}
                start += size
        return [json.dumps(answer) for answer in answers]

    @staticmethod
    def _decode(item):
        try:
            body = item.get("body") if isinstance(item, dict) else item
            if isinstance(body, (bytes, bytearray)):
                body = json.loads(body)
            return {i["name"]: np.asarray(i["data"], dtype=V2.get(i.get("datatype"), "float32")).reshape(i["shape"])
                    for i in body["inputs"]}
        except Exception as exc:  # a malformed request answers with what was wrong
            return ValueError(f"expected a KServe v2 JSON request ({{'inputs': [...]}}): {exc}")


_service = BundleHandler()


def handle(data, context):
    """TorchServe's module-level entry point."""
    if not hasattr(_service, "model"):
        _service.initialize(context)
    return None if data is None else _service.handle(data, context)
