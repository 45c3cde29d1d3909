"""KServe: an InferenceService (serving.kserve.io/v1beta1) over the v2 protocol, served by KServe's Triton
runtime from the Triton model repository beside it (`model_repository/`, the triton target's layout).

Resources come from the measurement: CPU = the threads the variant computed on, memory = its peak RSS with
50% headroom. storageUri is a placeholder: where the user uploads `model_repository/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferarena.deploy.base import Target, Written, curl, example_request
from inferarena.deploy.deployable import Deployable
from inferarena.deploy.triton import backend_of, write_repository

RUNTIME = "kserve-tritonserver"  # KServe's ClusterServingRuntime for Triton (formats onnx, triton, ...)
STORAGE = "s3://YOUR-BUCKET/PATH/model_repository"
# Required by the InferenceService schema (and by `kubectl apply`): the paths every file must have.
REQUIRED = (("apiVersion",), ("kind",), ("metadata", "name"), ("spec", "predictor", "model", "modelFormat", "name"),
            ("spec", "predictor", "model", "storageUri"))


class KServe(Target):
    name = "kserve"
    title = "KServe (InferenceService, v2 protocol, Triton runtime)"

    def write(self, d: Deployable, out: Path) -> Written:
        import yaml

        written = Written()
        files, written.artifact, written.checks, written.notes = write_repository(d, out / "model_repository")
        service = inference_service(d)
        missing = missing_fields(service)
        assert not missing, missing  # built here: a missing field is our bug
        path = out / "inferenceservice.yaml"
        path.write_text(f"# {d.variant.name} from inferarena run {d.run.run_id}: `kubectl apply -f {path.name}`.\n"
                        f"# storageUri: upload model_repository/ there first and replace the placeholder.\n"
                        + yaml.safe_dump(service, sort_keys=False))
        written.files = [*files, path]
        written.checks.append(f"{path.name} has the InferenceService's required fields ("
                              + ", ".join(".".join(p) for p in REQUIRED) + ")")
        written.serve = (
            f"Upload `model_repository/` (a Triton model repository with `{d.model_name}` on Triton's "
            f"`{backend_of(d)}` backend) to your storage, put its URI in `storageUri`, then "
            f"`kubectl apply -f {path.name}`. It asks for {d.threads} CPU (the threads measured) and "
            f"{_memory(d)} (the measured peak RSS with 50% headroom). The runtime is named ({RUNTIME}); remove "
            "`runtime:` to let the cluster pick one that serves the model format over v2.")
        written.request = curl(f"http://{service['metadata']['name']}.NAMESPACE.example.com/v2/models/"
                               f"{d.model_name}/infer", example_request(d))
        written.notes.append("not applied to a cluster here (no Kubernetes); checked against the schema's required "
                             "fields only")
        return written


def inference_service(d: Deployable) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": str(d.threads)}
    if d.memory_mi:
        resources["memory"] = f"{d.memory_mi}Mi"
    model = {"modelFormat": {"name": "onnx" if backend_of(d) == "onnxruntime" else "triton"},
             "protocolVersion": "v2", "runtime": RUNTIME, "storageUri": STORAGE,
             "resources": {"requests": dict(resources), "limits": dict(resources)}}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": d.model_name, "annotations": {
                "inferarena/run": str(d.run.run_id), "inferarena/variant": d.variant.name}},
            "spec": {"predictor": {"model": model}}}


def missing_fields(document: dict[str, Any]) -> list[str]:
    """The required fields an InferenceService document lacks (empty when it has them all)."""
    missing = []
    for path in REQUIRED:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node in (None, ""):
            missing.append(".".join(path))
    return missing


def _memory(d: Deployable) -> str:
    return f"{d.memory_mi}Mi" if d.memory_mi else "no memory (peak RSS was not measured)"
