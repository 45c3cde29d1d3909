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

import threading
from functools import cache

import numpy as np

from inferarena.errors import ConfigError
from inferarena.serving.clients import DATATYPES, Client, RequestFailed

SERVICE = "/inference.GRPCInferenceService/ModelInfer"
# The typed `contents` field for each KServe datatype, and the numpy dtype of raw bytes.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "UINT8": "uint_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "FP16": None}
NUMPY = {"BOOL": np.bool_, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
         "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


@cache
def messages():
    """(ModelInferRequest, ModelInferResponse) classes, from a descriptor built from the proto's fields."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

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
    request = message("ModelInferRequest", [
        ("model_name", 1, F.TYPE_STRING, one, None), ("model_version", 2, F.TYPE_STRING, one, None),
        ("id", 3, F.TYPE_STRING, one, None),
        ("inputs", 5, F.TYPE_MESSAGE, many, ".inference.ModelInferRequest.InferInputTensor"),
        ("raw_input_contents", 7, F.TYPE_BYTES, many, None)])
    message("InferInputTensor", tensor, request)
    response = message("ModelInferResponse", [
        ("model_name", 1, F.TYPE_STRING, one, None), ("model_version", 2, F.TYPE_STRING, one, None),
        ("id", 3, F.TYPE_STRING, one, None),
        ("outputs", 5, F.TYPE_MESSAGE, many, ".inference.ModelInferResponse.InferOutputTensor"),
        ("raw_output_contents", 6, F.TYPE_BYTES, many, None)])
    message("InferOutputTensor", tensor, response)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{n}"))
                 for n in ("ModelInferRequest", "ModelInferResponse"))


def encode_request(model: str, inputs: dict[str, np.ndarray]) -> bytes:
    Request, _ = messages()
    request = Request(model_name=model)
    for name, array in inputs.items():
        datatype = DATATYPES[array.dtype.name]
        field = CONTENTS.get(datatype)
        tensor = request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        if field is None:  # no typed field (FP16): the raw bytes, in input order
            request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
        else:
            getattr(tensor.contents, field).extend(array.reshape(-1).tolist())
    return request.SerializeToString()


def decode_response(body: bytes) -> dict[str, np.ndarray]:
    _, Response = messages()
    response = Response.FromString(body)
    out = {}
    for i, tensor in enumerate(response.outputs):
        shape = list(tensor.shape)
        if i < len(response.raw_output_contents):
            data = np.frombuffer(response.raw_output_contents[i], dtype=NUMPY[tensor.datatype])
        else:
            data = np.asarray(getattr(tensor.contents, CONTENTS.get(tensor.datatype) or "fp32_contents"))
        out[tensor.name] = data.reshape(shape)
    return out


class KServeV2Grpc(Client):
    """One gRPC channel per client thread (as the HTTP clients keep one connection each)."""

    protocol = "kserve-v2-grpc"

    def __init__(self, base_url: str, model: str, timeout_s: float = 30.0):
        address = base_url.split("://", 1)[-1].rstrip("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"cannot use gRPC target {base_url!r}", "give host:port (e.g. 127.0.0.1:8001)")
        self.address, self.model, self.timeout_s = address, model, timeout_s
        self._local = threading.local()
        self._channels: list = []
        self._lock = threading.Lock()

    def path(self) -> str:
        return SERVICE

    def encode(self, inputs):
        return encode_request(self.model, inputs)

    def decode(self, body):
        return decode_response(body)

    def post(self, body: bytes) -> bytes:
        import grpc

        call = getattr(self._local, "call", None)
        if call is None:
            channel = grpc.insecure_channel(self.address, options=[("grpc.max_receive_message_length", 64 << 20)])
            with self._lock:
                self._channels.append(channel)
            # Bytes in, bytes out: requests are encoded once per sample beforehand, like the HTTP bodies.
            call = self._local.call = channel.unary_unary(SERVICE, request_serializer=None, response_deserializer=None)
        try:
            return call(body, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise RequestFailed(f"gRPC {exc.code().name}: {(exc.details() or '')[:200]}") from None

    def close(self) -> None:
        with self._lock:
            for channel in self._channels:
                channel.close()
            self._channels.clear()
