"""`inferarena deploy --check`: the bundle served by the real server on 127.0.0.1, asked the README's own
request, and its answer compared with the variant's (cosine ≥ 0.999).

The bundle is copied to a scratch folder first, where ports are moved to free loopback ones; the bundle
written for the user is never touched. Each server runs in the environment serve-bench creates for it
(`envs.py`, minutes on first use), in its own process group, stopped afterwards:

- mlserver: `mlserver start` on the bundle;
- torchserve: TorchServe's frontend on the bundle's `config.properties` and `.mar` (needs Java);
- triton and kserve (whose model repository is Triton's): PyPI's tritonserver (pytriton's build, whose
  only backend is python). It is run once as written, which parses `config.pbtxt` and stops at the
  missing native backend library; then with `backend: "python"` and the bundle's own model code beside
  the artifact, which validates the whole config and answers. The line says both;
- docker: `app/serve.py` (the image's server) run by this Python, outside Docker, which cannot run here.

The reference answer comes from the artifact on its own runtime in this process (ONNX Runtime for .onnx,
OpenVINO for IR); a torch folder is compared through the bundle's model code, which the line says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from inferarena.errors import InferarenaError

MIN_COS = 0.999
_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def request_of(readme: str) -> tuple[str, dict]:
    """The README's curl: its URL and JSON body, as a user would copy them."""
    found = re.search(r"curl -s -X POST (\S+) .*?-d '(.*?)'", readme, re.S)
    if found is None:
        raise InferarenaError("the bundle's README has no request to check with", "write the bundle again")
    return found.group(1), json.loads(found.group(2))


def arrays(body: dict) -> dict[str, np.ndarray]:
    return {i["name"]: np.asarray(i["data"], dtype=_TYPES.get(i["datatype"], np.float32)).reshape(i["shape"])
            for i in body["inputs"]}


def cosine(a, b) -> float:
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def post(url: str, body: dict, timeout_s: float = 120) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        return json.loads(answer.read())


def reference(manifest: dict, bundle: Path, body: dict) -> tuple[np.ndarray, str]:
    """The variant's own answer to `body` from the bundle's copy of the artifact, and what computed it."""
    source = bundle / manifest["artifact"]["path"]
    inputs = arrays(body)
    if manifest["artifact"]["format"] == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
        return session.run(None, inputs)[0], f"ONNX Runtime {ort.__version__} on the artifact"
    if manifest["artifact"]["format"] == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(str(source), "CPU")
        return next(iter(compiled(inputs).values())), f"OpenVINO {ov.__version__} on the artifact"
    raise InferarenaError(f"--check compares ONNX and OpenVINO artifacts, not {manifest['artifact']['format']}",
                          "check the bundle by hand with the README's request")


HERE = Path(__file__).resolve().parent


def _answer(served: dict) -> np.ndarray:
    outputs = served.get("outputs") or []
    if not outputs:
        raise InferarenaError(f"the server answered without outputs: {str(served)[:200]}", "see the server's log")
    return np.asarray(outputs[0]["data"], np.float64)


def _compare(name: str, served: dict, expected: np.ndarray, how: str) -> str:
    got = _answer(served)
    if got.size != expected.size:
        raise InferarenaError(f"{name} answered {got.size} values, the variant {expected.size}",
                              "see the bundle's README for the model's outputs")
    similarity = cosine(got, expected)
    if similarity < MIN_COS:
        raise InferarenaError(f"{name} answered unlike the variant (cosine {similarity:.6f} < {MIN_COS})",
                              "see the server's log in the scratch folder named above")
    return f"served by {name}: the README's request answered, cosine {similarity:.6f} against the variant ({how})"


def check(target: str, bundle: Path, d, scratch: Path | None = None) -> list[str]:
    """Serve `bundle` (written for `target` from the Deployable `d`) and compare; the lines say what ran and
    what matched."""
    manifest = json.loads((bundle / "inferarena-bundle.json").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="inferarena-check-")) if scratch is None else scratch
    copy = scratch / "bundle"
    shutil.copytree(bundle, copy)
    url, body = request_of((copy / "README.md").read_text())
    expected, how = reference(manifest, copy, body)
    runs = {"mlserver": _mlserver, "torchserve": _torchserve, "triton": _triton, "kserve": _kserve,
            "docker": _docker}
    if target not in runs:
        raise InferarenaError(f"no serving check for {target}", f"check one of: {', '.join(runs)}")
    lines = runs[target](copy, manifest, url, body, expected, how, scratch, d)
    return [*lines, f"checked in {scratch} (a copy; the bundle itself is unchanged)"]


def environment_for(base, d):
    """The server's managed environment, plus the variant's runtime at the version it was measured with where
    the server's own environment lacks it (ONNX Runtime is in every one; OpenVINO and transformers are not)."""
    from inferarena.envs import Environment

    need = {"openvino": ("openvino",), "torch": ("transformers",)}.get(d.runtime, ())
    if not need:
        return base
    versions = d.versions()
    pins = tuple(f"{name}=={versions[name].split('+')[0]}" if versions.get(name) else name for name in need)
    return Environment(f"{base.name}-{d.runtime}", base.requirements + pins, base.after, base.remove)


def _ensure(base, d) -> Path:
    from inferarena import envs

    return envs.ensure(environment_for(base, d))


def _serve(server, ready: list[str], url: str, body: dict, timeout_s: float = 240, check=None) -> dict:
    try:
        with server:
            server.wait_ready(ready, timeout_s, check)
            return post(url, body)
    except OSError as exc:  # refused, reset, an HTTP error status
        raise InferarenaError(f"{server.name} did not answer the README's request ({exc})",
                              f"see {server.log}") from None


def _mlserver(out: Path, manifest: dict, url: str, body: dict, expected, how: str, scratch: Path, d) -> list[str]:
    from inferarena.serving.mlserver import MLServer
    from inferarena.serving.process import ServerProcess, free_port

    python = _ensure(MLServer.environment, d)
    ports = {name: free_port() for name in ("http", "grpc", "metrics")}
    settings = json.loads((out / "settings.json").read_text())
    settings.update(host="127.0.0.1", http_port=ports["http"], grpc_port=ports["grpc"], metrics_port=ports["metrics"],
                    metrics_dir=str(scratch / "metrics"), environments_dir=str(scratch / "envs"))
    (out / "settings.json").write_text(json.dumps(settings))
    base = f"http://127.0.0.1:{ports['http']}"
    name = manifest["model_name"]
    server = ServerProcess("mlserver", [str(python.parent / "mlserver"), "start", str(out)], scratch / "mlserver.log",
                           out)
    served = _serve(server, [f"{base}/v2/models/{name}/ready"], _local(url, base), body)
    return [_compare(f"MLServer {_version(python, 'mlserver')}", served, expected, how)]


def _torchserve(out: Path, manifest: dict, url: str, body: dict, expected, how: str, scratch: Path, d) -> list[str]:
    from inferarena.serving.process import ServerProcess, free_port
    from inferarena.serving.torchserve import TorchServe

    if shutil.which("java") is None:
        raise InferarenaError("TorchServe needs Java, and there is none on PATH",
                              "install a JRE 17+ (e.g. apt-get install openjdk-17-jre-headless), or check another target")
    python = _ensure(TorchServe.environment, d)
    name = manifest["model_name"]
    lines = []
    if not (out / "model-store" / f"{name}.mar").is_file():
        built = subprocess.run(["sh", "build-mar.sh"], cwd=out, capture_output=True, text=True,
                               env={**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"})
        if built.returncode != 0:
            raise InferarenaError(f"build-mar.sh failed: {(built.stderr or built.stdout).strip()[-300:]}",
                                  "pip install torch-model-archiver, then run the bundle's build-mar.sh")
        lines.append("the .mar built by the bundle's build-mar.sh")
    ports = {n: free_port() for n in ("http", "management", "metrics", "grpc", "grpc_management")}
    properties = (out / "config.properties").read_text()
    for key, port in (("inference_address", "http"), ("management_address", "management"),
                      ("metrics_address", "metrics")):
        properties = re.sub(rf"{key}=.*", f"{key}=http://127.0.0.1:{ports[port]}", properties)
    (out / "config.properties").write_text(
        properties + f"grpc_inference_address=127.0.0.1\ngrpc_inference_port={ports['grpc']}\n"
        f"grpc_management_address=127.0.0.1\ngrpc_management_port={ports['grpc_management']}\n")
    command = [str(python.parent / "torchserve"), "--start", "--ncs", "--foreground", "--ts-config", "config.properties"]
    env = {"PATH": f"{python.parent}:{os.environ['PATH']}", "LOG_LOCATION": str(scratch / "logs"),
           "METRICS_LOCATION": str(scratch / "logs")}
    server = ServerProcess("torchserve", command, scratch / "torchserve.log", out, env)

    def workers_ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['management']}/models/{name}", timeout=5) as answer:
                return any(w["status"] == "READY" for w in json.loads(answer.read())[0]["workers"])
        except (OSError, ValueError, KeyError, IndexError):
            return False

    served = _serve(server, [f"http://127.0.0.1:{ports['http']}/ping"], _local(url, f"http://127.0.0.1:{ports['http']}"),
                    body, check=workers_ready)
    return [*lines, _compare(f"TorchServe {_version(python, 'torchserve')}", served, expected, how)]


def _triton(out: Path, manifest: dict, url: str, body: dict, expected, how: str, scratch: Path, d,
            repository: Path | None = None) -> list[str]:
    import sysconfig

    from inferarena.serving.process import ServerProcess, free_port
    from inferarena.serving.triton import Triton

    repository = repository or out
    python = _ensure(Triton.environment, d)
    site = next(python.parent.parent.glob("lib/python3*/site-packages"))
    dist = site / "pytriton" / "tritonserver"
    backends = scratch / "backends"  # pytriton's layout: the stub of this Python beside the python backend
    shutil.copytree(dist / "backends", backends)
    shutil.copy(dist / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" /
                "triton_python_backend_stub", backends / "python")
    env = {"LD_LIBRARY_PATH": os.pathsep.join([sysconfig.get_config_var("LIBDIR") or "",
                                               str(site / "nvidia_pytriton.libs")])}
    ports = {n: free_port() for n in ("http", "grpc")}

    def command(repo: Path) -> list[str]:
        return [str(dist / "bin" / "tritonserver"), f"--model-repository={repo}", f"--backend-directory={backends}",
                "--http-address=127.0.0.1", f"--http-port={ports['http']}", "--grpc-address=127.0.0.1",
                f"--grpc-port={ports['grpc']}", "--allow-metrics=false"]

    name = manifest["model_name"]
    config = repository / name / "config.pbtxt"
    backend = re.search(r'backend: "(\w+)"', config.read_text())
    backend = backend.group(1) if backend else "?"
    lines = []
    if backend != "python":
        native = subprocess.run(command(repository), capture_output=True, text=True, env={**os.environ, **env},
                                timeout=180)
        log = native.stdout + native.stderr
        if f"unable to find backend library for backend '{backend}'" not in log or "text proto" in log:
            raise InferarenaError(f"tritonserver did not accept {config.name}: {log.strip().splitlines()[-1][:300]}",
                                  "see the bundle's config.pbtxt")
        lines.append(f"tritonserver {_triton_version(log)} parsed config.pbtxt and stopped at the missing "
                     f"'{backend}' backend library (pytriton's build has the python backend only)")
        from inferarena.deploy.base import artifact_file, model_spec

        version = repository / name / "1"
        (version / "model.json").write_text(json.dumps(model_spec(d, artifact_file(d))))
        shutil.copy(HERE / "bundle_model.py", version)
        shutil.copy(HERE / "triton_model.py", version / "bundle_triton.py")
        # The stub embeds this machine's Python, which lacks the environment's runtime: put it on the path.
        (version / "model.py").write_text(f"import sys\nsys.path[:0] = [{str(site)!r}, {str(version)!r}]\n"
                                          "from bundle_triton import TritonPythonModel  # noqa: F401\n")
        # The python backend loads model.py: the native backend's file name goes with it.
        text = re.sub(r'^default_model_filename: .*\n', "", config.read_text(), flags=re.M)
        config.write_text(text.replace(f'backend: "{backend}"', 'backend: "python"'))
    base = f"http://127.0.0.1:{ports['http']}"
    server = ServerProcess("triton", command(repository), scratch / "triton.log", repository, env)
    served = _serve(server, [f"{base}/v2/models/{name}/ready"], _local(url, base), body)
    version = _triton_version(server.log.read_text(errors="replace"))
    what = "the python backend" + (f" in place of '{backend}', the rest of config.pbtxt as written"
                                   if backend != "python" else "")
    return [*lines, _compare(f"tritonserver {version} ({what})", served, expected, how)]


def _kserve(out: Path, manifest: dict, url: str, body: dict, expected, how: str, scratch: Path, d) -> list[str]:
    """The InferenceService's model repository on tritonserver (no Kubernetes here): as the triton check."""
    name = manifest["model_name"]
    triton_url = f"http://localhost:8000/v2/models/{name}/infer"
    return ["no Kubernetes here: the InferenceService's model_repository/ is served by tritonserver alone",
            *_triton(out, manifest, triton_url, body, expected, how, scratch, d, out / "model_repository")]


def _docker(out: Path, manifest: dict, url: str, body: dict, expected, how: str, scratch: Path, d) -> list[str]:
    from inferarena.serving.process import ServerProcess, free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = ServerProcess("serve.py", [sys.executable, str(out / "app" / "serve.py"), "--host", "127.0.0.1",
                                        "--port", str(port)], scratch / "serve.log", out / "app")
    served = _serve(server, [f"{base}/v2/health/ready"], _local(url, base), body)
    return [_compare("the image's app/serve.py (run by this Python, outside Docker: no Docker here)", served,
                     expected, how)]


def _local(url: str, base: str) -> str:
    """The README's URL (http://localhost:PORT/...) on the port the check's server listens on."""
    return re.sub(r"^https?://[^/]+", base, url)


def _version(python: Path, package: str) -> str:
    found = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
                           capture_output=True, text=True)
    return found.stdout.strip() or "?"


def _triton_version(log: str) -> str:
    """tritonserver has no --version: its startup table says `server_version | 2.51.0`."""
    match = re.search(r"server_version\s*\|\s*(\d+\.\d+\.\d+)", log)
    return match.group(1) if match else "(version not logged)"
