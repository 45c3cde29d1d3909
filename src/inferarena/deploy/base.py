"""The deploy-target contract: `Target.write(deployable, out) -> Written`, and what targets share: copying the
artifact out of the cache, the Python model code for servers that run Python, and a KServe v2 request."""

from __future__ import annotations

import hashlib
import json
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from inferarena.deploy.deployable import Deployable

HERE = Path(__file__).parent


@dataclass
class Written:
    """What a target wrote: its files, the artifact's copies (bundle path -> cache path), and its README
    sections: how to serve it, a request, what was checked here and what differs from the measurement."""

    files: list[Path] = field(default_factory=list)
    artifact: dict[Path, Path] = field(default_factory=dict)
    serve: str = ""
    request: str = ""
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Target(ABC):
    name: ClassVar[str]
    title: ClassVar[str]  # the server, as its README names it

    @abstractmethod
    def write(self, d: Deployable, out: Path) -> Written:
        """Write the bundle's target-specific files under `out` (which exists)."""


def copy_artifact(d: Deployable, folder: Path, stem: str = "model") -> dict[Path, Path]:
    """The artifact's files under `folder`, the main one renamed `stem` + its suffix (model.onnx, model.xml
    with model.bin, as servers expect); ONNX external data keeps its name, which the graph refers to; a folder
    keeps its layout under `folder/stem`. Returns bundle path -> cache path."""
    folder.mkdir(parents=True, exist_ok=True)
    copies: dict[Path, Path] = {}
    if d.artifact.is_dir():
        for source in d.files:
            copies[folder / stem / source.relative_to(d.artifact)] = source
    else:
        main = folder / f"{stem}{d.artifact.suffix}"
        copies[main] = d.artifact
        for source in d.files[1:]:
            # The IR's weights follow the .xml's new name; ONNX external data is named inside the graph.
            copies[main.with_suffix(".bin") if d.format == "openvino" else folder / source.name] = source
    for target, source in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return copies


def artifact_file(d: Deployable, stem: str = "model") -> str:
    """The name `copy_artifact` gives the main file (or folder)."""
    return stem if d.artifact.is_dir() else f"{stem}{d.artifact.suffix}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_spec(d: Deployable, file: str) -> dict[str, Any]:
    """model.json: what `bundle_model.BundleModel` loads, and how (the measured knobs, per instance)."""
    info = d.variant.session_info or {}
    return {"name": d.model_name, "runtime": d.runtime, "format": d.format, "file": file,
            "precision": d.variant.precision, "instances": d.instances, "threads": d.threads_per_instance,
            "knobs": d.knobs,
            "inference_precision": info.get("inference_precision_hint"),
            "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.inputs],
            "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.outputs]}


def write_python_model(d: Deployable, folder: Path, file: str) -> list[Path]:
    """The bundle's own model code (`bundle_model.py`, numpy and the runtime only) and its model.json."""
    folder.mkdir(parents=True, exist_ok=True)
    code = folder / "bundle_model.py"
    shutil.copyfile(HERE / "bundle_model.py", code)
    spec = folder / "model.json"
    spec.write_text(json.dumps(model_spec(d, file), indent=2) + "\n")
    return [code, spec]


def example_request(d: Deployable) -> dict[str, Any]:
    """A KServe v2 request body for one sample, with the model's real input names and a small shape. Token
    ids are small valid ids; masks are ones; type ids zeros; other numbers 0.5."""
    inputs = []
    for t in d.inputs:
        shape = t.example_shape(1)
        count = 1
        for n in shape:
            count *= n
        if t.dtype.startswith(("int", "uint")):
            value = 0 if "type" in t.name else (101 if "input_ids" in t.name else 1)
        elif t.dtype == "bool":
            value = True
        else:
            value = 0.5
        inputs.append({"name": t.name, "shape": shape, "datatype": t.v2_type, "data": [value] * count})
    return {"inputs": inputs}


def curl(url: str, body: dict[str, Any]) -> str:
    return (f"curl -s -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n"
            f"  -d '{json.dumps(body, separators=(',', ':'))}'")
