"""Docker: an image that serves the variant with the exact versions it was measured with (the run's Python,
its runtime and numpy, from the stored environment) behind the bundle's plain KServe v2 server (serve.py).

A Triton image cannot pin the runtime's version (each release ships its own ONNX Runtime and OpenVINO);
for Triton, `inferarena deploy --target triton` writes the model repository instead.
"""

from __future__ import annotations

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


class Docker(Target):
    name = "docker"
    title = "Docker (plain Python KServe v2 server)"

    def write(self, d: Deployable, out: Path) -> Written:
        app = out / "app"
        written = Written(artifact=copy_artifact(d, app))
        files = write_python_model(d, app, artifact_file(d))
        shutil.copyfile(HERE / "plain_server.py", app / "serve.py")
        pins = requirements(d)
        (out / "requirements.txt").write_text("\n".join(pins) + "\n")
        (out / "Dockerfile").write_text(dockerfile(d))
        (out / ".dockerignore").write_text("README.md\ninferarena-bundle.json\nreproduce.yaml\n")
        written.files = [*files, app / "serve.py", out / "requirements.txt", out / "Dockerfile", out / ".dockerignore"]
        tag = f"inferarena/{d.model_name}:run{d.run.run_id}"
        written.serve = (
            f"```\ndocker build -t {tag} .\ndocker run --rm -p 8000:8000 --cpus {d.threads} "
            + (f"--memory {d.memory_mi}m " if d.memory_mi else "") + f"{tag}\n```\n\n"
            f"The image pins Python {_python(d)} and {', '.join(pins)}, as measured; `--cpus` and `--memory` are the "
            f"threads measured and the peak RSS with 50% headroom. Without Docker: `pip install -r requirements.txt "
            f"&& python app/serve.py`. The server runs {d.instances} model instance(s) and no server-side batching; "
            "for Triton's dynamic batcher use `inferarena deploy --target triton`.")
        written.request = curl(f"http://localhost:8000/v2/models/{d.model_name}/infer", example_request(d))
        written.notes.append("the image was not built when this bundle was written; inferarena's tests run its "
                             "app/serve.py outside Docker")
        if "torch" in d.versions():
            written.notes.append("torch is pinned without its local tag (+cpu): add PyTorch's CPU wheel index to pip "
                                 "for the CPU-only build")
        return written


def requirements(d: Deployable) -> list[str]:
    """The runtime, its helpers and numpy at the versions the run recorded (PyPI names, local tags dropped)."""
    return [f"{name}=={version.split('+')[0]}" for name, version in d.versions().items()]


def dockerfile(d: Deployable) -> str:
    return (f"# {d.variant.name} from inferarena run {d.run.run_id}, measured {d.run.created_at[:10]} on {d.host}:\n"
            "# the Python and package versions of that measurement.\n"
            f"FROM python:{_python(d)}-slim\n"
            "WORKDIR /app\n"
            "COPY requirements.txt /app/requirements.txt\n"
            "RUN pip install --no-cache-dir -r /app/requirements.txt\n"
            "COPY app/ /app/\n"
            "EXPOSE 8000\n"
            'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8000"]\n')


def _python(d: Deployable) -> str:
    return d.run.environment.get("python") or "3.11"
