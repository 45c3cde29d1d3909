"""TorchServe: a handler (handler.py over the bundle's model code), model-config.yaml packed in the .mar,
and config.properties for the frontend: one worker per measured stream, TorchServe's batching at the
measured batch size. The .mar is built here with torch-model-archiver (pure Python, the deploy extra) when
it is installed; TorchServe itself needs Java and is left to the README's command."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
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

STORE = "model-store"


class TorchServe(Target):
    name = "torchserve"
    title = "TorchServe"

    def write(self, d: Deployable, out: Path) -> Written:
        model = out / "model"  # what goes into the .mar
        written = Written(artifact=copy_artifact(d, model))
        file = artifact_file(d)
        files = write_python_model(d, model, file)
        shutil.copyfile(HERE / "torchserve_model.py", model / "handler.py")
        delay_ms = max(1, round(d.max_delay_us / 1000))
        (model / "model-config.yaml").write_text(
            f"minWorkers: {d.instances}\nmaxWorkers: {d.instances}\nbatchSize: {d.batch_size}\n"
            f"maxBatchDelay: {delay_ms}\nresponseTimeout: 120\ndeviceType: cpu\n")
        (out / "config.properties").write_text(properties(d, delay_ms))
        command = archive_command(d, file, [p.relative_to(out) for p in written.artifact])
        (out / "build-mar.sh").write_text("#!/bin/sh\n# Packs model/ into model-store/"
                                          f"{d.model_name}.mar (pip install torch-model-archiver).\n"
                                          "set -e\ncd \"$(dirname \"$0\")\"\nmkdir -p " + STORE + "\n"
                                          + " ".join(command) + "\n")
        (out / "build-mar.sh").chmod(0o755)
        written.files = [*files, model / "handler.py", model / "model-config.yaml", out / "config.properties",
                         out / "build-mar.sh"]
        mar, problem = build_mar(out, command)
        if mar is not None:
            written.files.append(mar)
            written.checks.append(f"{STORE}/{mar.name} built here by torch-model-archiver {_version()}")
        else:
            written.notes.append(f"the .mar was not built here ({problem}): run ./build-mar.sh")
        pins = " ".join(f"{name}=={version}" for name, version in d.versions().items())
        written.serve = (
            f"```\npip install torchserve==0.12.0 torch-model-archiver==0.12.0 pyyaml {pins}\n"
            + ("" if mar is not None else "./build-mar.sh\n")
            + "torchserve --start --ncs --ts-config config.properties\n```\n\n"
            f"config.properties names the model store, the .mar and its settings. TorchServe needs Java 11 or later. "
            f"It runs {d.instances} worker(s) of {d.threads_per_instance} "
            f"thread(s) each, batching up to {d.batch_size} requests within {delay_ms} ms (requests whose shapes "
            "differ run one by one). The handler takes and answers KServe v2 JSON on TorchServe's own endpoint.")
        written.request = curl(f"http://localhost:8080/predictions/{d.model_name}", example_request(d))
        written.notes.append("TorchServe was not started when this bundle was written; inferarena's tests serve such "
                             ".mar files with TorchServe 0.12.0")
        return written


def properties(d: Deployable, delay_ms: int) -> str:
    models = {d.model_name: {"1.0": {"defaultVersion": True, "marName": f"{d.model_name}.mar",
                                     "minWorkers": d.instances, "maxWorkers": d.instances,
                                     "batchSize": d.batch_size, "maxBatchDelay": delay_ms, "responseTimeout": 120}}}
    return "\n".join([
        f"# {d.variant.name} from inferarena run {d.run.run_id}: workers, batch and delay as measured.",
        "inference_address=http://0.0.0.0:8080", "management_address=http://127.0.0.1:8081",
        "metrics_address=http://127.0.0.1:8082", f"model_store={STORE}", f"load_models={d.model_name}.mar",
        f"default_workers_per_model={d.instances}", f"number_of_netty_threads={max(1, min(4, d.threads))}",
        "netty_client_threads=1", "job_queue_size=1000", "default_response_timeout=120",
        "install_py_dep_per_model=false", "disable_token_authorization=true",
        f"models={json.dumps(models)}",
    ]) + "\n"


def archive_command(d: Deployable, file: str, copies: list[Path]) -> list[str]:
    """torch-model-archiver's command, run from the bundle's folder (relative paths, so it can be rerun):
    the artifact's main file as the serialized file, its other files (a folder: the folder) as extra files."""
    extra = ["model/bundle_model.py", "model/model.json"]
    if d.artifact.is_dir():
        extra.append(f"model/{file}")
        serialized: list[str] = []
    else:
        serialized = ["--serialized-file", f"model/{file}"]
        extra += sorted(str(p) for p in copies if p.name != file)
    return ["torch-model-archiver", "--model-name", d.model_name, "--version", "1.0", *serialized,
            "--handler", "model/handler.py", "--extra-files", ",".join(extra), "--config-file",
            "model/model-config.yaml", "--export-path", STORE, "--force"]


def build_mar(out: Path, command: list[str]) -> tuple[Path | None, str | None]:
    """The .mar, built with this interpreter's torch-model-archiver, or None and why not (the bundle is still
    complete: build-mar.sh packs it where the archiver is installed)."""
    if importlib.util.find_spec("model_archiver") is None:
        return None, "torch-model-archiver is not installed; pip install 'inferarena[deploy]'"
    (out / STORE).mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "model_archiver.model_packaging", *command[1:]], cwd=out,
                          capture_output=True, text=True)
    mar = out / STORE / f"{command[command.index('--model-name') + 1]}.mar"
    if done.returncode != 0 or not mar.is_file():
        return None, "torch-model-archiver failed: " + " ".join((done.stderr or done.stdout).split())[-300:]
    return mar, None


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("torch-model-archiver")
