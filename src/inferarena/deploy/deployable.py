"""A stored variant resolved into what a server needs: the artifact's files, its format and tensors, and the
measured knobs as a server spells them (instances, threads per instance, batch, queue delay).

Everything comes from the store and from the artifact itself (ONNX graph or OpenVINO model inputs and
outputs), never from the variant's name. The frameworks are imported inside the functions that read them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferarena.errors import ConfigError, InferarenaError, ModelError
from inferarena.hardware import hardware_class
from inferarena.results import RunRecord, VariantResult

# What deploy can load outside inferarena, by the runtime the variant was measured on.
RUNTIME_FORMATS = {"onnxruntime": ("onnx",), "openvino": ("onnx", "openvino"), "torch": ("hf_encoder",)}
# numpy's name -> the KServe v2 datatype (Triton's TYPE_ names add the prefix).
V2_TYPES = {"float32": "FP32", "float16": "FP16", "float64": "FP64", "bfloat16": "BF16", "int64": "INT64",
            "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}
FREE_DIM = 8  # an open dimension (a sequence length) in the example request


@dataclass(frozen=True)
class Tensor:
    """One input or output: numpy dtype name and shape, None where the model leaves a dimension open."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def v2_type(self) -> str:
        return V2_TYPES.get(self.dtype, "BYTES")

    def example_shape(self, batch: int = 1) -> list[int]:
        """A small shape the model accepts: the batch, and FREE_DIM for every other open dimension."""
        return [batch if i == 0 and d is None else (d if d is not None else FREE_DIM) for i, d in enumerate(self.shape)]


@dataclass
class Deployable:
    """One measured variant, ready to be written out for a server."""

    run: RunRecord
    variant: VariantResult
    format: str  # onnx | openvino | hf_encoder
    artifact: Path  # the main file (.onnx, .xml) or folder
    files: list[Path]  # every file it needs, the main one first (external data, the IR's .bin, a folder's files)
    inputs: list[Tensor]
    outputs: list[Tensor]
    model_name: str
    reproduce: dict[str, Any] | None = None  # a run config that measures the variant again
    why: str | None = None  # the recommendation's explanation, when it picked the variant
    notes: list[str] = field(default_factory=list)
    serving: Any = None  # serve-bench's best configuration on the target's server (serving.choice.ServingChoice)

    @property
    def runtime(self) -> str:
        return self.variant.runtime

    @property
    def knobs(self) -> dict[str, Any]:
        return self.variant.knobs

    @property
    def batched(self) -> bool:
        """Every tensor's first dimension is open: a server may stack requests along it."""
        return all(t.shape and t.shape[0] is None for t in (*self.inputs, *self.outputs))

    @property
    def threads(self) -> int:
        """Threads the variant computed on, in all (the plan fills the knob; else the host's cores)."""
        return int(self.knobs.get("threads") or (self.variant.node or {}).get("logical_cores")
                   or self.run.environment.get("logical_cores") or 1)

    @property
    def instances(self) -> int:
        """Requests in flight at once: ONNX Runtime and torch streams (each its own session), OpenVINO's
        infer requests (what the plugin chose for its hint, as measured)."""
        info = self.variant.session_info or {}
        if self.runtime == "openvino":
            return int(info.get("optimal_number_of_infer_requests") or self.knobs.get("streams") or 1)
        return int(self.knobs.get("streams") or 1)

    @property
    def threads_per_instance(self) -> int:
        if self.runtime == "openvino":  # one compiled model shared by every request: its threads in all
            return self.threads
        return max(1, self.threads // self.instances)

    @property
    def batch_size(self) -> int:
        """The batch it was measured with (Offline): the variant's own, else the run's workload's."""
        if not self.batched:
            return 1
        if self.serving is not None:
            return max(1, self.serving.max_batch_size)
        return int(self.variant.batch_size or self.run.config.get("workload", {}).get("batch_size") or 8)

    @property
    def max_delay_us(self) -> int:
        """How long a server may hold a request to fill a batch: half the measured single-sample p50, so a
        lone request waits at most about 1.5 times its own latency (100 µs to 10 ms)."""
        if self.serving is not None and self.serving.max_batch_size > 1:
            return int(max(100, round(self.serving.max_delay_ms * 1000)))
        p50 = self.figures().get("single_stream.latency_ms_p50")
        return int(min(10_000, max(100, round((p50 or 2.0) * 500))))

    @property
    def batching_basis(self) -> str:
        """Where the batch size and queue delay came from, in words."""
        if self.serving is not None:
            return f"serve-bench's best on {self.serving.server}: {self.serving.sentence()}"
        return "the measured batch, and half the single-sample p50 as the delay"

    @property
    def memory_mi(self) -> int | None:
        """Memory to ask a scheduler for: the measured peak RSS (MiB) with 50% headroom, rounded up."""
        peak = self.figures().get("memory.peak_rss_mb")
        return math.ceil(peak * 1.5) if peak else None

    @property
    def host(self) -> str:
        return hardware_class(self.variant.node)

    def figures(self) -> dict[str, float]:
        return self.variant.figures()

    def versions(self) -> dict[str, str]:
        """The versions the measurement used of what serving this variant needs."""
        packages = self.run.environment.get("packages", {})
        wanted = {"onnxruntime": ("onnxruntime", "numpy"), "openvino": ("openvino", "numpy"),
                  "torch": ("torch", "transformers", "numpy")}[self.runtime]
        return {name: packages[name] for name in wanted if name in packages}


def resolve(run: RunRecord, variant: VariantResult) -> Deployable:
    """Check that `variant` can be deployed and read its artifact. Every refusal names the fix."""
    if run.kind != "predict":
        raise ConfigError(f"run {run.run_id} measured {run.kind} models; deploy writes bundles for predict models "
                          "(one batch in, tensors out)", "deploy a run of an encoder or classifier")
    if not variant.ok:
        raise ConfigError(f"variant {variant.name} failed in run {run.run_id} ({variant.error}): there is nothing "
                          "measured to deploy", f"pick one that succeeded: {_names(run)}")
    if variant.device != "cpu":
        raise ConfigError(f"variant {variant.name} ran on {variant.device}; deploy writes CPU bundles so far",
                          "deploy a variant measured with --device cpu")
    if variant.runtime not in RUNTIME_FORMATS:
        raise ConfigError(f"variant {variant.name} runs on {variant.runtime}; deploy writes bundles for "
                          f"{', '.join(RUNTIME_FORMATS)}", f"pick one of: {_names(run, RUNTIME_FORMATS)}")
    if variant.adaptive:
        raise ConfigError(f"variant {variant.name} decides per input in inferarena's own controller (adaptive "
                          "pipeline), which no server runs", f"pick a static variant: {_names(run, RUNTIME_FORMATS)}")
    if not variant.artifact or not Path(variant.artifact).exists():
        raise ModelError(f"the artifact of {variant.name} is gone ({variant.artifact or 'none stored'}); the pass "
                         "cache was cleaned or moved", f"measure it again to rebuild it: inferarena run --config "
                         f"<its reproduce config> (or `inferarena recommend {run.run_id}` writes one)")
    path = Path(variant.artifact)
    found = artifact_format(path)
    if found not in RUNTIME_FORMATS[variant.runtime]:
        raise ConfigError(f"variant {variant.name}'s artifact {path.name} is {found}, which deploy cannot hand "
                          f"to {variant.runtime}", "pick a variant on onnxruntime or openvino")
    if variant.runtime == "torch" and variant.passes:
        made = ", ".join(p.name for p in variant.passes)
        raise ConfigError(f"variant {variant.name} was made by {made}, which only inferarena's torch runtime applies "
                          "when it loads the folder", "deploy its ONNX twin (the same pipeline on onnxruntime)")
    inputs, outputs, files = read(path, found)
    return Deployable(run, variant, found, path, files, inputs, outputs, model_name(run.model))


def artifact_format(path: Path) -> str:
    """The format of an artifact, from its files (the store keeps the path, the files say the rest)."""
    if path.is_dir():
        if (path / "config.json").is_file() and any((path / w).is_file() for w in _weight_files()):
            return "hf_encoder"
        return "folder"
    return {".onnx": "onnx", ".xml": "openvino", ".gguf": "gguf", ".tflite": "tflite"}.get(path.suffix, path.suffix)


def read(path: Path, fmt: str) -> tuple[list[Tensor], list[Tensor], list[Path]]:
    """(inputs, outputs, files) of an artifact, read from the artifact itself."""
    try:
        if fmt == "onnx":
            return _onnx(path)
        if fmt == "openvino":
            return _openvino(path)
        return _hf_encoder(path)
    except InferarenaError:
        raise
    except Exception as exc:  # a truncated or foreign file: the reader's own words
        raise ModelError(f"cannot read {path} ({type(exc).__name__}: {exc})",
                         "measure the variant again to rebuild its artifact") from None


def _onnx(path: Path):
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}

    def tensor(value) -> Tensor:
        t = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "float32"
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
        return Tensor(value.name, "bfloat16" if t.elem_type == onnx.TensorProto.BFLOAT16 else dtype, dims)

    external = sorted({entry.value for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                       for entry in t.external_data if entry.key == "location"})
    return ([tensor(v) for v in graph.input if v.name not in initializers], [tensor(v) for v in graph.output],
            [path, *(path.parent / name for name in external)])


def _openvino(path: Path):
    import openvino as ov

    bin_file = path.with_suffix(".bin")
    if not bin_file.is_file():
        raise ModelError(f"{path} has no weights beside it ({bin_file.name})", "measure the variant again")
    model = ov.Core().read_model(str(path))

    def tensor(port) -> Tensor:
        dims = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        return Tensor(port.get_any_name(), port.get_element_type().to_dtype().name, dims)

    return [tensor(p) for p in model.inputs], [tensor(p) for p in model.outputs], [path, bin_file]


def _hf_encoder(path: Path):
    """The torch runtime's encoder (models.hf_encoder): token ids in, a mean-pooled, L2-normalised embedding out."""
    from inferarena.models.hf_encoder import OUTPUT_NAME, input_names

    config = json.loads((path / "config.json").read_text())
    names = input_names(config.get("type_vocab_size", 0) > 1)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return ([Tensor(n, "int64", (None, None)) for n in names],
            [Tensor(OUTPUT_NAME, "float32", (None, int(config.get("hidden_size") or 0) or None))], files)


def _weight_files() -> tuple[str, ...]:
    from inferarena.models.hf_encoder import WEIGHT_FILES

    return WEIGHT_FILES


def model_name(model: str) -> str:
    """A name every server accepts (Triton's model folder, a Kubernetes object): lowercase, digits, dashes."""
    stem = Path(model).stem if model.endswith((".onnx", ".xml")) else Path(model).name or model
    name = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    return (name or "model")[:50].strip("-")


def _names(run: RunRecord, runtimes=None) -> str:
    names = [v.name for v in run.variants if v.ok and (runtimes is None or v.runtime in runtimes)]
    return ", ".join(names) or "none: no variant succeeded"
