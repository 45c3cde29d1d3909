"""Runs inside the managed `litert-torch` environment (see `inferarena.envs`): PyTorch -> .tflite.

Arguments come as JSON on stdin: `builder` ("module:function"), `weights`, `inputs` (the model's
input spec), `out`, `mode` (float32 or int8) and, for int8, `calibration` (an .npz of batches).
The last line printed is the JSON result. Only framework-free inferarena modules are imported
here (the model builder); this environment has no ONNX Runtime, OpenVINO or TensorFlow.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def _dynamic_pad_lowering(torch) -> None:
    """litert-torch 0.10 lowers `aten.constant_pad_nd` through jax, which fails on a dynamic batch
    dimension ("Dimension size after padding is not at least 0"). Non-negative pads lower straight
    to `stablehlo.pad` instead; negative ones keep the original lowering."""
    from litert_converter.mlir.dialects import stablehlo
    from litert_torch.backend.lowerings import registry, utils

    original = registry.lookup(torch.ops.aten.constant_pad_nd.default)

    def pad(lctx, x, pads, value=0.0):
        rank = len(x.type.shape)
        low, high = [0] * rank, [0] * rank
        for i in range(len(pads) // 2):
            low[rank - 1 - i], high[rank - 1 - i] = pads[2 * i], pads[2 * i + 1]
        if min(low + high) < 0:
            return original(lctx, x, pads, value)
        return stablehlo.pad(x, utils.splat(value, x.type.element_type, []), edge_padding_low=low,
                             edge_padding_high=high, interior_padding=[0] * rank)

    registry.global_registry.register(torch.ops.aten.constant_pad_nd, pad)


def main() -> None:
    args = json.loads(sys.stdin.read())
    import litert_torch
    import numpy as np
    import torch

    module_name, _, attr = args["builder"].partition(":")
    model = getattr(importlib.import_module(module_name), attr)(args["weights"]).eval()
    shapes = [tuple(d if isinstance(d, int) and d > 0 else 2 for d in spec["shape"]) for spec in args["inputs"]]
    example = tuple(torch.randn(shape) for shape in shapes)
    started = time.perf_counter()
    options = {}
    if args["mode"] == "int8":
        # Static INT8, per-channel weights, calibrated on the workload (PT2E flow of litert-torch's tests).
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        example = tuple(t[:1] for t in example)  # INT8 conversion is for batch 1 here (see the pass)
        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
        with np.load(args["calibration"], allow_pickle=False) as data:
            for key in sorted(data.files):
                prepared(torch.from_numpy(data[key]))
        model = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
        options["quant_config"] = QuantConfig(pt2e_quantizer=quantizer)
    else:
        _dynamic_pad_lowering(torch)
        batch = torch.export.Dim("batch", min=1, max=1024)
        options["dynamic_shapes"] = tuple({0: batch} for _ in example)
    converted = litert_torch.convert(model, example, **options)
    converted.export(args["out"])
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1),
                      "litert_torch": importlib.metadata.version("litert-torch")}))


if __name__ == "__main__":
    import importlib.metadata

    main()
