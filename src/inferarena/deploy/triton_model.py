"""Triton's python backend entry point for a bundle written by `inferarena deploy` (copied as model.py into
the model's version folder, beside bundle_model.py and model.json): each request runs through
`BundleModel`, the variant's own runtime with its measured knobs."""

import sys
from pathlib import Path

import triton_python_backend_utils as pb_utils  # provided by Triton's python backend

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_model import BundleModel  # noqa: E402 - found beside this file


class TritonPythonModel:
    def initialize(self, args):
        self.model = BundleModel(Path(args["model_repository"]) / args["model_version"])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                inputs = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                          for name in self.model.dtypes}
                outputs = self.model.predict(inputs)
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(name, value) for name, value in outputs.items()]))
            except Exception as exc:  # one bad request answers with its error; the others are served
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc))))
        return responses
