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
"""

from __future__ import annotations

import http.client
import json
import threading
from abc import ABC, abstractmethod
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np

from inferarena.errors import ConfigError

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32", "float16": "FP16",
             "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}


class RequestFailed(Exception):
    pass


class Client(ABC):
    protocol: ClassVar[str]

    def __init__(self, base_url: str, model: str, timeout_s: float = 30.0):
        parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parts.scheme not in ("http", "") or not parts.hostname:
            raise ConfigError(f"cannot use target {base_url!r}", "give an http://host:port URL")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._local = threading.local()

    @abstractmethod
    def path(self) -> str: ...

    @abstractmethod
    def encode(self, inputs: dict[str, np.ndarray]) -> bytes:
        """One request body for these input arrays (each with its batch axis)."""

    @abstractmethod
    def decode(self, body: bytes) -> dict[str, np.ndarray]: ...

    def post(self, body: bytes) -> bytes:
        """Send one encoded request on this thread's connection; the raw answer, or RequestFailed."""
        connection = getattr(self._local, "connection", None)
        for attempt in (0, 1):  # a kept-alive connection the server closed gets one fresh retry
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                self._local.connection = connection
            try:
                connection.request("POST", self.prefix + self.path(), body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                connection.close()
                connection = self._local.connection = None
                if attempt:
                    raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
                continue
            if response.status != 200:
                raise RequestFailed(f"HTTP {response.status}: {data[:200].decode(errors='replace')}")
            return data
        raise RequestFailed("unreachable")

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.decode(self.post(self.encode(inputs)))

    def close(self) -> None:  # noqa: B027 - optional: HTTP connections close with their threads
        """Release what the client holds open (gRPC channels)."""


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
