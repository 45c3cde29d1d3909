"""A local .onnx file with generic tensor inputs."""

from __future__ import annotations

from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models.base import ModelSource


class OnnxFile(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".onnx")

    def load(self, spec: str) -> Artifact:
        path = Path(spec).resolve()
        if not path.is_file():
            raise ModelError(f"ONNX file {spec} does not exist", "check the path passed to --model")
        return Artifact(
            path=path,
            format="onnx",
            meta={"name": path.name, "input_kind": "tensor", "task": "tensor", "inputs": read_input_spec(path)},
        )


def read_input_spec(path: Path) -> list[dict]:
    """The graph inputs as [{name, dtype, shape}], shape dims being ints or symbolic names."""
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise RuntimeUnavailable("reading .onnx files needs the onnx package", "pip install 'inferarena[onnxruntime]'") from None
    try:
        # By path: the checker then finds external data (model.onnx.data) next to the file, whatever the
        # current folder; a proto loaded without its data would send it looking in the current folder.
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ... for a bad file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path.name} is not a valid ONNX model ({first_line[:200]})", "re-export the model or check the file"
        ) from None
    initializers = {init.name for init in model.graph.initializer}
    spec = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            raise ModelError(
                f"input {value.name!r} of {path.name} is a {kind}, not a tensor, so it cannot be fed",
                "export the model with plain tensor inputs",
            )
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
        spec.append({"name": value.name, "dtype": helper.tensor_dtype_to_np_dtype(tensor.elem_type).name, "shape": dims})
    return spec
