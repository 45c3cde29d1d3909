"""MLServer (Seldon): KServe v2 over REST and gRPC, adaptive batching, parallel inference workers.

The model runs in our own MLServer runtime (`mlserver_runtime.OrtRuntime`, which wraps
`backend.OrtModel`). Adaptive batching is MLServer's `max_batch_size` / `max_batch_time` per model;
`parallel_workers` is the instance count (MLServer's default, 1, runs inference in one worker
process; batching happens in the main process before dispatch). It lives in its
own managed environment: mlserver pins its own versions of protobuf, grpcio, fastapi and uvicorn.
"""

from __future__ import annotations

import json
from pathlib import Path

from inferarena.envs import Environment, source_path
from inferarena.serving.servers import Batching, ModelServer, ServedModel


class MLServer(ModelServer):
    name = "mlserver"
    protocol = "kserve-v2"
    # uvloop 0.22+ crashes MLServer 1.7.1 workers at start (SeldonIO/MLServer#2286).
    environment = Environment("mlserver", ("mlserver==1.7.1", "uvloop<0.22", "onnxruntime", "numpy"))
    port_names = ("http", "grpc", "metrics")
    grpc_protocol = "kserve-v2-grpc"

    def command(self, models: list[ServedModel], batching: Batching, workdir: Path, python: Path, ports):
        root = workdir / "mlserver"
        root.mkdir(parents=True, exist_ok=True)
        (root / "settings.json").write_text(json.dumps({
            "debug": False, "host": "127.0.0.1", "http_port": ports["http"], "grpc_port": ports["grpc"],
            "metrics_port": ports["metrics"], "parallel_workers": batching.instances,
            "load_models_at_startup": True, "metrics_dir": str(workdir / "mlserver-metrics"),
            "environments_dir": str(workdir / "mlserver-envs")}))
        for model in models:
            folder = root / model.name
            folder.mkdir(exist_ok=True)
            settings = {"name": model.name, "implementation": "inferarena.serving.mlserver_runtime.OrtRuntime",
                        "parameters": {"uri": str(model.folder)}}
            if batching.max_batch_size > 1:
                settings.update(max_batch_size=batching.max_batch_size, max_batch_time=batching.max_delay_ms / 1000)
            (folder / "model-settings.json").write_text(json.dumps(settings))
        return [str(python.parent / "mlserver"), "start", str(root)], {"PYTHONPATH": source_path()}

    def base_url(self, ports) -> str:
        return f"http://127.0.0.1:{ports['http']}"

    def ready_urls(self, ports, models):
        base = self.base_url(ports)
        return [f"{base}/v2/health/ready"] + [f"{base}/v2/models/{m.name}/ready" for m in models]

