"""NVIDIA Triton: a model repository, `<name>/config.pbtxt` + `<name>/1/<artifact>`, on Triton's native
backend for the variant's runtime (onnxruntime for ONNX, openvino for OpenVINO IR or ONNX on OpenVINO),
the python backend only where none fits (torch: `model.py` runs the bundle's own model code).

config.pbtxt is built as a `ModelConfig` message (tritonclient's model_config_pb2, the deploy extra) and
printed in protobuf text format, so it is valid by construction; it is then parsed back and its tensors
checked against the copied artifact's own inputs and outputs. Backend keys, as each backend reads them:
onnxruntime `intra_op_thread_count`, `inter_op_thread_count`, `execution_mode`, `optimization.graph.level`;
openvino `PERFORMANCE_HINT`, `INFERENCE_NUM_THREADS`, `NUM_STREAMS`, `HINT_BF16`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from inferarena.deploy import deployable
from inferarena.deploy.base import HERE, Target, Written, artifact_file, copy_artifact, curl, example_request
from inferarena.deploy.deployable import Deployable, Tensor
from inferarena.errors import InferarenaError

# ONNX Runtime's graph optimization level as the backend's `optimization { graph { level } }` says it.
ORT_LEVELS = {"basic": -1, "extended": 1, "disable_all": 2}
DEFAULT_FILES = {"onnxruntime": "model.onnx", "openvino": "model.xml", "python": "model.py"}


class Triton(Target):
    name = "triton"
    title = "NVIDIA Triton Inference Server"

    def write(self, d: Deployable, out: Path) -> Written:
        written = Written()
        written.files, written.artifact, written.checks, written.notes = write_repository(d, out)
        url = f"http://localhost:8000/v2/models/{d.model_name}/infer"
        written.serve = (
            f"This folder is a Triton model repository holding one model, `{d.model_name}`, on the "
            f"`{backend_of(d)}` backend. Serve it with the Triton release whose {_runtime_title(d)} is closest to "
            f"the measured {_measured(d)} (NVIDIA's framework support matrix lists each release's versions; "
            "`YY.MM` below is that release's tag):\n\n"
            "```\ndocker run --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 -v \"$PWD\":/models \\\n"
            "  nvcr.io/nvidia/tritonserver:YY.MM-py3 tritonserver --model-repository=/models\n```\n\n"
            f"Ready when `curl -s localhost:8000/v2/models/{d.model_name}/ready` answers 200.")
        written.request = curl(url, example_request(d))
        written.notes.append(f"Triton was not started when this bundle was written (no build with the {backend_of(d)} "
                             "backend here); inferarena's tests load such repositories with tritonserver 2.51")
        return written


def backend_of(d: Deployable) -> str:
    return {"onnxruntime": "onnxruntime", "openvino": "openvino"}.get(d.runtime, "python")


def write_repository(d: Deployable, root: Path) -> tuple[list[Path], dict[Path, Path], list[str], list[str]]:
    """The model repository under `root`: (files, artifact copies, checks, notes). Other targets reuse it."""
    backend = backend_of(d)
    folder = root / d.model_name
    version = folder / "1"
    files: list[Path] = []
    if backend == "python":
        from inferarena.deploy.base import write_python_model

        copies = copy_artifact(d, version)
        files += write_python_model(d, version, artifact_file(d))
        shutil.copyfile(HERE / "triton_model.py", version / "model.py")
        files.append(version / "model.py")
        filename = None
    else:
        copies = copy_artifact(d, version)
        filename = artifact_file(d)
    config, notes = model_config(d, backend, filename)
    text = render(config)
    (folder / "config.pbtxt").write_text(text)
    files.append(folder / "config.pbtxt")
    checked = validate(text, d, version / filename if filename else None)
    if checked is None:
        return files, copies, [], [*notes, "config.pbtxt NOT validated here: tritonclient is not installed "
                                   "(pip install 'inferarena[deploy]', or run `inferarena deploy --check`)"]
    return files, copies, [checked], notes


def model_config(d: Deployable, backend: str, filename: str | None) -> tuple[dict[str, Any], list[str]]:
    """The ModelConfig as a dict (protobuf's JSON mapping), and what Triton cannot set as measured."""
    batched = d.batched
    config: dict[str, Any] = {
        "name": d.model_name, "backend": backend, "max_batch_size": d.batch_size if batched else 0,
        "input": [_tensor(t, batched) for t in d.inputs], "output": [_tensor(t, batched) for t in d.outputs],
        "instance_group": [{"count": d.instances, "kind": "KIND_CPU"}],
    }
    if filename and filename != DEFAULT_FILES[backend]:
        config["default_model_filename"] = filename
    if batched:
        config["dynamic_batching"] = {"preferred_batch_size": [d.batch_size],
                                      "max_queue_delay_microseconds": d.max_delay_us}
    parameters, notes = {"onnxruntime": _onnxruntime, "openvino": _openvino}.get(backend, _python)(d, config)
    if parameters:
        config["parameters"] = {k: {"string_value": str(v)} for k, v in parameters.items()}
    if d.variant.shape != "dynamic":
        notes.append(f"measured with the {d.variant.shape!r} shape strategy (inputs padded by inferarena's workload); "
                     "Triton runs each request at the length it is sent with")
    return config, notes


def _tensor(t: Tensor, batched: bool) -> dict[str, Any]:
    dims = [-1 if n is None else n for n in (t.shape[1:] if batched else t.shape)]
    entry: dict[str, Any] = {"name": t.name, "data_type": f"TYPE_{t.v2_type}", "dims": dims or [1]}
    if not dims:  # a scalar: Triton wants at least one dimension
        entry["reshape"] = {"shape": []}
    return entry


def _onnxruntime(d: Deployable, config: dict) -> tuple[dict[str, Any], list[str]]:
    knobs, notes = d.knobs, []
    parameters = {"intra_op_thread_count": d.threads_per_instance,
                  "inter_op_thread_count": int(knobs.get("inter_op_threads") or 1),
                  "execution_mode": 1 if knobs.get("execution_mode") == "parallel" else 0}
    level = knobs.get("graph_optimization_level", "all")
    if level in ORT_LEVELS:
        config["optimization"] = {"graph": {"level": ORT_LEVELS[level]}}
    if knobs.get("allow_spinning") is False:
        notes.append("measured with allow_spinning=false; the onnxruntime backend has no key for it (its threads "
                     "spin, ONNX Runtime's default)")
    return parameters, notes


def _openvino(d: Deployable, config: dict) -> tuple[dict[str, Any], list[str]]:
    knobs, info, notes = d.knobs, d.variant.session_info or {}, []
    parameters: dict[str, Any] = {"PERFORMANCE_HINT": knobs.get("performance_hint") or "LATENCY",
                                  "INFERENCE_NUM_THREADS": d.threads}
    streams = knobs.get("streams") or info.get("num_streams")
    if streams:
        parameters["NUM_STREAMS"] = streams
    precision = info.get("inference_precision_hint")
    if precision == "bf16":
        parameters["HINT_BF16"] = "YES"
    elif precision == "f32" and d.run.environment.get("native_bf16"):
        notes.append("measured with INFERENCE_PRECISION_HINT=f32; the openvino backend has no key for f32, and "
                     "OpenVINO computes in bf16 by default on a CPU with native bf16 such as this host's: expect "
                     "its bf16 twin's speed and fidelity")
    if knobs.get("pinning") is not None:
        notes.append(f"measured with ENABLE_CPU_PINNING={knobs['pinning']}; the openvino backend has no key for it")
    return parameters, notes


def _python(d: Deployable, config: dict) -> tuple[dict[str, Any], list[str]]:
    pins = " ".join(f"{name}=={version.split('+')[0]}" for name, version in d.versions().items())
    return {}, [f"no Triton backend runs {d.runtime} {d.format} natively: the python backend runs the bundle's "
                f"model code (model.py), one request at a time per instance; its Python needs `pip install {pins}` "
                "inside the Triton image"]


def render(config: dict[str, Any]) -> str:
    """config.pbtxt, through the ModelConfig message where tritonclient is installed (valid by construction)."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return _text(config)
    return text_format.MessageToString(json_format.ParseDict(config, model_config_pb2.ModelConfig()))


def validate(text: str, d: Deployable, artifact: Path | None) -> str | None:
    """Parse config.pbtxt back into a ModelConfig and check every tensor's name, type and dims against the
    copied artifact (read again from the bundle). Returns what was checked (None without tritonclient);
    raises on a mismatch."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return None
    parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
    inputs, outputs = (deployable.read(artifact, d.format)[:2] if artifact is not None else (d.inputs, d.outputs))
    batched = parsed.max_batch_size > 0
    for declared, real in ((parsed.input, inputs), (parsed.output, outputs)):
        found = {t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in declared}
        wanted = {t.name: (f"TYPE_{t.v2_type}", _tensor(t, batched)["dims"]) for t in real}
        if found != wanted:
            raise InferarenaError(f"config.pbtxt does not match {artifact or d.artifact}: {found} against {wanted}",
                                  "report this as a bug in `inferarena deploy`")
    return (f"config.pbtxt parsed back into Triton's ModelConfig (tritonclient {_version('tritonclient')}); "
            f"{len(inputs)} input(s) and {len(outputs)} output(s) match the artifact's names, types and dims")


def _text(config: dict[str, Any], indent: str = "") -> str:
    """Protobuf text format from the JSON mapping, for installs without tritonclient."""
    lines = []
    for key, value in config.items():
        if key == "parameters":
            for name, entry in value.items():
                lines.append(f'{indent}parameters {{ key: "{name}" value {{ string_value: "{entry["string_value"]}" }} }}')
            continue
        for item in value if isinstance(value, list) and (not value or isinstance(value[0], dict)) else [value]:
            if isinstance(item, dict):
                lines.append(f"{indent}{key} {{\n{_text(item, indent + '  ')}{indent}}}")
            elif isinstance(item, list):
                lines.append(f"{indent}{key}: [{', '.join(map(str, item))}]")
            elif isinstance(item, str) and not item.startswith(("TYPE_", "KIND_")):
                lines.append(f'{indent}{key}: "{item}"')
            else:
                lines.append(f"{indent}{key}: {item}")
    return "\n".join(lines) + "\n"


def _runtime_title(d: Deployable) -> str:
    return {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}.get(d.runtime, "Python (python backend)")


def _measured(d: Deployable) -> str:
    versions = d.versions()
    return f"{d.runtime} {versions.get(d.runtime, '(version not recorded)')}"


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"
