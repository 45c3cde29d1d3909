"""KServe v2 / Open Inference Protocol over gRPC (`inference.GRPCInferenceService/ModelInfer`), as
Triton, MLServer and OpenVINO Model Server serve it.

The messages are declared here from the protocol's published `grpc_predict_v2.proto` (only the
fields a request and its answer use; protobuf keeps the others as unknown fields), so the client
needs grpcio and protobuf and nothing else. tritonclient[grpc] would bring the same stubs, but pins
protobuf<7 and ml-dtypes<=0.5.4, which clash with the runtimes' own pins.

Inputs go as typed `contents` (int64_contents, fp32_contents...), which every server accepts;
answers are read from `raw_output_contents` (Triton) or typed `contents` (MLServer), whichever came.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path

import grpc  # imported here so that a missing grpcio shows at `client()`, with the pip command
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from inferarena.errors import ConfigError
from inferarena.serving.client_base import DATATYPES, Client, RequestFailed, api_key

SERVICE = "/inference.GRPCInferenceService/ModelInfer"
# The typed `contents` field for each KServe datatype, and the numpy dtype of raw bytes.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "UINT8": "uint_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "FP16": None}
NUMPY = {"BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
         "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
         "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


@cache
def messages():
    """(ModelInferRequest, ModelInferResponse) classes, from a descriptor built from the proto's fields."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="inferarena_kserve_v2.proto", package="inference", syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]], parent=None):
        m = (parent.nested_type if parent is not None else file.message_type).add(name=name)
        for field_name, number, kind, label, type_name in fields:
            m.field.add(name=field_name, number=number, type=kind, label=label, **({"type_name": type_name} if type_name else {}))
        return m

    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("InferTensorContents", [
        ("bool_contents", 1, F.TYPE_BOOL, many, None), ("int_contents", 2, F.TYPE_INT32, many, None),
        ("int64_contents", 3, F.TYPE_INT64, many, None), ("uint_contents", 4, F.TYPE_UINT32, many, None),
        ("uint64_contents", 5, F.TYPE_UINT64, many, None), ("fp32_contents", 6, F.TYPE_FLOAT, many, None),
        ("fp64_contents", 7, F.TYPE_DOUBLE, many, None), ("bytes_contents", 8, F.TYPE_BYTES, many, None)])
    tensor = [("name", 1, F.TYPE_STRING, one, None), ("datatype", 2, F.TYPE_STRING, one, None),
              ("shape", 3, F.TYPE_INT64, many, None), ("contents", 5, F.TYPE_MESSAGE, one, ".inference.InferTensorContents")]
    header = [("model_name", 1, F.TYPE_STRING, one, None), ("model_version", 2, F.TYPE_STRING, one, None),
              ("id", 3, F.TYPE_STRING, one, None)]
    request = message("ModelInferRequest", [
        *header, ("inputs", 5, F.TYPE_MESSAGE, many, ".inference.ModelInferRequest.InferInputTensor"),
        ("raw_input_contents", 7, F.TYPE_BYTES, many, None)])
    message("InferInputTensor", tensor, request)
    response = message("ModelInferResponse", [
        *header, ("outputs", 5, F.TYPE_MESSAGE, many, ".inference.ModelInferResponse.InferOutputTensor"),
        ("raw_output_contents", 6, F.TYPE_BYTES, many, None)])
    message("InferOutputTensor", tensor, response)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{n}"))
                 for n in ("ModelInferRequest", "ModelInferResponse"))


def encode_request(model: str, inputs: dict[str, np.ndarray]) -> bytes:
    Request, _ = messages()
    request = Request(model_name=model)
    # Raw contents go for every input or for none (the protocol matches them by index): raw when a
    # datatype has no typed field (FP16).
    raw = any(CONTENTS.get(DATATYPES[a.dtype.name]) is None for a in inputs.values())
    for name, array in inputs.items():
        datatype = DATATYPES[array.dtype.name]
        tensor = request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        if raw:
            request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
        else:
            getattr(tensor.contents, CONTENTS[datatype]).extend(array.reshape(-1).tolist())
    return request.SerializeToString()


def decode_response(body: bytes) -> dict[str, np.ndarray]:
    _, Response = messages()
    response = Response.FromString(body)
    out = {}
    for i, tensor in enumerate(response.outputs):
        shape = list(tensor.shape)
        if tensor.datatype not in NUMPY:
            raise RequestFailed(f"output {tensor.name!r} has datatype {tensor.datatype}, which this client does not read")
        if i < len(response.raw_output_contents):
            data = np.frombuffer(response.raw_output_contents[i], dtype=NUMPY[tensor.datatype])
        else:
            data = np.asarray(getattr(tensor.contents, CONTENTS.get(tensor.datatype) or "fp32_contents"))
        out[tensor.name] = data.reshape(shape)
    return out


class KServeV2Grpc(Client):
    """One gRPC channel per client thread, as the HTTP clients keep one connection each. Channels are
    keyed by the thread's name, so each probe's new pool of `client_N` threads reuses them."""

    protocol = "kserve-v2-grpc"

    def __init__(self, base_url: str, model: str, timeout_s: float = 30.0):
        # grpcs:// (or https://) is TLS with the certificate verified; plain host:port is loopback-style plaintext.
        self.tls = base_url.split("://", 1)[0] in ("grpcs", "https") if "://" in base_url else False
        address = base_url.split("://", 1)[-1].rstrip("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"cannot use gRPC target {base_url!r}", "give host:port (e.g. 127.0.0.1:8001)")
        self.address, self.model, self.timeout_s = address, model, timeout_s
        key = api_key(self.key_variables)
        self._metadata = (("authorization", f"Bearer {key}"),) if key else None
        self._calls: dict[str, object] = {}
        self._channels: list = []
        self._lock = threading.Lock()

    def path(self) -> str:
        return SERVICE

    def encode(self, inputs):
        return encode_request(self.model, inputs)

    def decode(self, body):
        return decode_response(body)

    def post(self, body: bytes) -> bytes:
        thread = threading.current_thread().name
        call = self._calls.get(thread)
        if call is None:
            # A local subchannel pool: without it, every thread's channel shares one HTTP/2 connection.
            options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
            if self.tls:
                cafile = os.environ.get("SSL_CERT_FILE")
                roots = Path(cafile).read_bytes() if cafile else None
                channel = grpc.secure_channel(self.address, grpc.ssl_channel_credentials(roots), options=options)
            else:
                channel = grpc.insecure_channel(self.address, options=options)
            # Bytes in, bytes out: requests are encoded once per sample beforehand, like the HTTP bodies.
            call = channel.unary_unary(SERVICE, request_serializer=None, response_deserializer=None)
            with self._lock:
                self._channels.append(channel)
                self._calls[thread] = call
        try:
            return call(body, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise RequestFailed(f"gRPC {exc.code().name}: {(exc.details() or '')[:200]}") from None

    def close(self) -> None:
        with self._lock:
            for channel in self._channels:
                channel.close()
            self._channels.clear()
            self._calls.clear()
