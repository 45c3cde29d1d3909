"""MLServer (Seldon): model-settings.json naming the bundle's own runtime (runtime.BundleRuntime), since
MLServer ships no ONNX Runtime or OpenVINO runtime, and settings.json with one inference worker per
measured stream. `mlserver start DIR` serves it over KServe v2 REST (8080) and gRPC (8081)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from inferarena.deploy.base import (
    HERE,
    Target,
    Written,
    artifact_file,
    copy_artifact,
    curl,
    example_request,
    write_python_model,
)
from inferarena.deploy.deployable import Deployable


class MLServer(Target):
    name = "mlserver"
    title = "MLServer"

    def write(self, d: Deployable, out: Path) -> Written:
        written = Written(artifact=copy_artifact(d, out))
        file = artifact_file(d)
        files = write_python_model(d, out, file)
        shutil.copyfile(HERE / "mlserver_model.py", out / "runtime.py")
        settings = model_settings(d, file)
        (out / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        (out / "settings.json").write_text(json.dumps(
            {"http_port": 8080, "grpc_port": 8081, "parallel_workers": d.instances}, indent=2) + "\n")
        written.files = [*files, out / "runtime.py", out / "model-settings.json", out / "settings.json"]
        pins = " ".join(f"{name}=={version}" for name, version in d.versions().items())
        written.serve = (
            f"```\npip install mlserver==1.7.1 {pins}\nmlserver start .\n```\n\n"
            f"MLServer serves `{d.model_name}` over KServe v2 REST on 8080 and gRPC on 8081, with "
            f"{d.instances} inference worker(s) of {d.threads_per_instance} thread(s) each, as measured"
            + (f", and adaptive batching up to {d.batch_size} requests within {d.max_delay_us / 1000:g} ms." if
               "max_batch_size" in settings else "."))
        written.request = curl(f"http://localhost:8080/v2/models/{d.model_name}/infer", example_request(d))
        written.notes.append("MLServer was not started when this bundle was written; inferarena's tests serve such "
                             "bundles with MLServer 1.7.1")
        if d.batched and "max_batch_size" not in settings:
            written.notes.append("adaptive batching is off: MLServer stacks requests along the batch axis only, and "
                                 "this model's other dimensions (e.g. the sequence length) differ between requests")
        return written


def model_settings(d: Deployable, file: str) -> dict:
    settings = {"name": d.model_name, "implementation": "runtime.BundleRuntime",
                "parameters": {"uri": f"./{file}", "version": "1"}}
    fixed = all(n is not None for t in d.inputs for n in t.shape[1:])
    if d.batched and fixed and d.batch_size > 1:  # stacked requests must agree on every other dimension
        settings.update(max_batch_size=d.batch_size, max_batch_time=d.max_delay_us / 1e6)
    return settings
