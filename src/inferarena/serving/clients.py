"""Clients for the protocols model servers speak, one persistent HTTP connection per thread.

- `kserve-v2`: the KServe v2 / Open Inference Protocol REST API (`POST /v2/models/NAME/infer`, JSON
  tensors), which Triton, MLServer and OpenVINO Model Server share. JSON only: MLServer does not take
  Triton's binary-tensor extension.
- `torchserve`: `POST /predictions/NAME`, our handler's JSON body (`{"inputs": {name: nested list}}`).
- `kserve-v2-grpc` (in `kserve_grpc`): the same protocol over gRPC.
- `tfserving-rest`: TF Serving's documented REST `:predict` (`{"inputs": {name: [...]}}` in the
  columnar format, answer under "outputs"). Written from the documentation: TF Serving cannot be
  installed on these machines, so it has not been checked against a real one.

Requests are encoded once per sample and reused (`encode`), so the client's own cost per query is
the HTTP exchange and the response decoding, which the load generator reports as client CPU time.
The `Client` contract and `RequestFailed` live in `client_base`; they are importable from here too.
"""

from __future__ import annotations

import json

import numpy as np

from inferarena.errors import ConfigError
from inferarena.serving.client_base import DATATYPES, Client, RequestFailed  # noqa: F401 - re-exported


class KServeV2(Client):
    protocol = "kserve-v2"

    def path(self) -> str:
        return f"/v2/models/{self.model}/infer"

    def encode(self, inputs):
        tensors = [{"name": name, "shape": list(a.shape), "datatype": DATATYPES[a.dtype.name],
                    "data": a.reshape(-1).tolist()} for name, a in inputs.items()]
        return json.dumps({"inputs": tensors}).encode()

    def decode(self, body):
        outputs = json.loads(body)["outputs"]
        return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in outputs}


class TorchServe(Client):
    protocol = "torchserve"

    def path(self) -> str:
        return f"/predictions/{self.model}"

    def encode(self, inputs):
        return json.dumps({"inputs": {name: a.tolist() for name, a in inputs.items()}}).encode()

    def decode(self, body):
        return {name: np.asarray(value) for name, value in json.loads(body).items()}


class TFServingREST(Client):
    protocol = "tfserving-rest"

    def path(self) -> str:
        return f"/v1/models/{self.model}:predict"

    def encode(self, inputs):
        return json.dumps({"inputs": {name: a.tolist() for name, a in inputs.items()}}).encode()

    def decode(self, body):
        outputs = json.loads(body)["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value) for name, value in outputs.items()}
        return {"outputs": np.asarray(outputs)}


PROTOCOLS: dict[str, type[Client]] = {c.protocol: c for c in (KServeV2, TorchServe, TFServingREST)}


GRPC_PROTOCOLS = ("kserve-v2-grpc",)  # in serving.kserve_grpc (imports grpcio, only when asked for)


def client(protocol: str, base_url: str, model: str) -> Client:
    if protocol == "kserve-v2-grpc":
        try:
            from inferarena.serving.kserve_grpc import KServeV2Grpc
        except ImportError:
            raise ConfigError("the kserve-v2-grpc protocol needs grpcio and protobuf",
                              "pip install 'inferarena[serving]'") from None
        return KServeV2Grpc(base_url, model)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}", f"choose from {', '.join([*PROTOCOLS, *GRPC_PROTOCOLS])}")
    return PROTOCOLS[protocol](base_url, model)
