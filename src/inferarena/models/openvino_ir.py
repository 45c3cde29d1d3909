"""A user's OpenVINO IR (model.xml next to its model.bin), with generic tensor inputs like an .onnx file.

Only the OpenVINO runtime reads IR; the plan names the others as unable to load it.
"""

from __future__ import annotations

from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models.base import ModelSource


class OpenVINOIR(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".xml")

    def load(self, spec: str) -> Artifact:
        path = Path(spec).resolve()
        if not path.is_file():
            raise ModelError(f"OpenVINO IR {spec} does not exist", "check the path passed to --model")
        if not path.with_suffix(".bin").is_file():
            raise ModelError(f"OpenVINO IR {path.name} has no weights file {path.with_suffix('.bin').name} next to it",
                             "keep the .xml and its .bin in one folder, with the same name")
        return Artifact(path=path, format="openvino",
                        meta={"name": path.name, "input_kind": "tensor", "task": "tensor", "inputs": read_input_spec(path)})


def read_input_spec(path: Path) -> list[dict]:
    """The model's inputs as [{name, dtype, shape}], dynamic dims as '?'."""
    try:
        import openvino as ov
    except ImportError:
        raise RuntimeUnavailable("reading OpenVINO IR needs openvino", "pip install 'inferarena[openvino]'") from None
    try:
        model = ov.Core().read_model(str(path))
        spec = []
        for port in model.inputs:
            shape = port.get_partial_shape()
            dims = [d.get_length() if d.is_static else "?" for d in shape] if shape.rank.is_static else []
            spec.append({"name": port.get_any_name(), "dtype": port.get_element_type().to_dtype().name, "shape": dims})
    except Exception as exc:  # noqa: BLE001 - openvino raises RuntimeError and others for a bad file
        # OpenVINO's message starts with where it was thrown; the reason is its last line.
        first = ([line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__])[-1]
        raise ModelError(f"{path.name} is not a valid OpenVINO IR ({first[:200]})",
                         "export the model again (openvino.save_model) and keep its .bin beside it") from None
    if not spec:
        raise ModelError(f"{path.name} has no inputs", "export a model with tensor inputs")
    return spec
