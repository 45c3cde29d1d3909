"""FLOPs per inference from an ONNX graph: MatMul, Gemm and Conv, at concrete input shapes.

Shapes are propagated with ONNX shape inference (with data propagation, so Reshape targets built
from Shape ops resolve). Imports onnx: call inside a worker.
"""

from __future__ import annotations

import math
from pathlib import Path


class OnnxFlopCounter:
    """FLOPs of one ONNX model per batch shape, cached. Batch 1 is counted at batch 2 and halved:
    exported graphs broadcast masks in ways that leave a batch of 1 ambiguous to shape inference,
    and FLOPs are linear in the batch."""

    def __init__(self, path: Path, batched: set[str]):
        self.path = path
        self.batched = batched  # inputs whose first axis is a symbolic batch
        self.cache: dict[tuple, float | None] = {}

    def __call__(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        key = tuple(sorted(shapes.items()))
        if key not in self.cache:
            single = all(shapes[n][0] == 1 for n in self.batched if n in shapes) and self.batched
            if single:
                doubled = {n: ((2, *s[1:]) if n in self.batched else s) for n, s in shapes.items()}
                flops = onnx_flops(self.path, doubled)
                self.cache[key] = None if flops is None else flops / 2
            else:
                self.cache[key] = onnx_flops(self.path, shapes)
        return self.cache[key]


def onnx_flops(path: Path, input_shapes: dict[str, tuple[int, ...]]) -> float | None:
    """Multiply-accumulates × 2 of every MatMul/Gemm/Conv; None if a shape stays unknown."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    # Exporters store shapes with symbolic dims; drop them so inference recomputes every one.
    del model.graph.value_info[:]
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    for value in model.graph.input:
        if value.name in input_shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, input_shapes[value.name]):
                dim.Clear()
                dim.dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {init.name: list(init.dims) for init in inferred.graph.initializer}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    total = 0.0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED:
            continue
        ins = [shapes.get(name) for name in node.input[:2]]
        out = shapes.get(node.output[0])
        if any(not s for s in ins) or not out:  # unknown (or scalar) shape: no honest count
            return None
        if node.op_type == "Conv":
            weight = ins[1]  # (C_out, C_in / group, k...)
            total += 2.0 * math.prod(out) * math.prod(weight[1:])
        else:
            a = ins[0]
            transposed = _attr(node, "transA") and node.op_type in ("Gemm", "FusedMatMul")
            k = (a[-2] if node.op_type == "FusedMatMul" else a[0]) if transposed else a[-1]
            total += 2.0 * math.prod(out) * k
    return total


# FusedMatMul (com.microsoft) is what ORT's optimizer turns MatMul + Mul/Transpose into.
COUNTED = ("MatMul", "Gemm", "Conv", "FusedMatMul")


def _attr(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)
