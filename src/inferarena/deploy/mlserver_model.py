"""MLServer's custom runtime for a bundle written by `inferarena deploy` (copied as runtime.py beside
model-settings.json): `BundleModel` behind MLServer's MLModel. MLServer has no ONNX Runtime or OpenVINO
runtime of its own, so the variant runs through the bundle's model code, with its measured knobs. With
adaptive batching on, MLServer stacks queued requests along the first axis before `predict`."""

import sys
from pathlib import Path

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_model import BundleModel  # noqa: E402 - found beside this file


class BundleRuntime(MLModel):
    async def load(self) -> bool:
        self.model = BundleModel(Path(await get_model_uri(self.settings)).parent)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = self.model.predict({i.name: NumpyCodec.decode_input(i) for i in payload.inputs})
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output(name=name, payload=value) for name, value in outputs.items()])
