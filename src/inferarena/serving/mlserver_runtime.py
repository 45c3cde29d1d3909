"""Loaded by MLServer inside its own environment (see `serving.mlserver`): our ONNX model as an
MLServer runtime. With adaptive batching on, MLServer stacks queued requests along the first axis
before `predict` and splits the outputs after it."""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from inferarena.serving.backend import OrtModel


class OrtRuntime(MLModel):
    async def load(self) -> bool:
        self.model = OrtModel(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outputs = self.model.predict(inputs)
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output(name=name, payload=value) for name, value in outputs.items()])
