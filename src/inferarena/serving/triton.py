"""NVIDIA Triton, as PyPI's `nvidia-pytriton` ships it: a real tritonserver (2.51) with only the
Python backend, so the model runs as our ONNX Runtime session inside a Python callable
(`triton_serve`), behind Triton's dynamic batcher and instance groups.

Three pitfalls, each handled here:
- pytriton needs numpy<2: with numpy 2 every answer is silently empty (HTTP 500 "output tensor shape
  does not match"). Hence its own environment.
- Its backend stub links the system's libpython 3.11, and a model load fails on another 3.11 build
  with "'_thread.RLock' object has no attribute '_recursion_count'": LD_LIBRARY_PATH points at this
  interpreter's LIBDIR.
- A stop that is not graceful leaves ~/.cache/pytriton/workspace_*, /dev/shm segments and
  /tmp/folder* behind. The workspace goes under the run's folder, the leader gets SIGTERM first
  (turned into pytriton's own clean shutdown), and `cleanup` removes what is left.
"""

from __future__ import annotations

import shutil
import sysconfig
import time
from pathlib import Path

from inferarena.envs import Environment, source_path
from inferarena.serving.servers import Batching, ModelServer, ServedModel


class Triton(ModelServer):
    name = "triton"
    protocol = "kserve-v2"
    environment = Environment("triton", ("nvidia-pytriton==0.7.0", "numpy<2", "onnxruntime"))
    port_names = ("http", "grpc", "metrics")
    grpc_protocol = "kserve-v2-grpc"
    stop_leader_first = True

    def command(self, models: list[ServedModel], batching: Batching, workdir: Path, python: Path, ports):
        self.started = time.time()
        command = [str(python), "-m", "inferarena.serving.triton_serve", "--http-port", str(ports["http"]),
                   "--grpc-port", str(ports["grpc"]), "--metrics-port", str(ports["metrics"]),
                   "--max-batch-size", str(batching.max_batch_size),
                   "--delay-us", str(int(batching.max_delay_ms * 1000)), "--instances", str(batching.instances),
                   "--workspace", str(workdir / "triton-workspace"),
                   *[arg for m in models for arg in ("--model", f"{m.name}={m.folder}")]]
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        import os

        env = {"PYTHONPATH": source_path(), "LD_LIBRARY_PATH": os.pathsep.join(
            p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)}
        return command, env

    def base_url(self, ports) -> str:
        return f"http://127.0.0.1:{ports['http']}"

    def ready_urls(self, ports, models):
        base = self.base_url(ports)
        return [f"{base}/v2/health/ready"] + [f"{base}/v2/models/{m.name}/ready" for m in models]

    def batch_counters(self, ports):
        """Triton's Prometheus counters: nv_inference_count (samples) over nv_inference_exec_count (batches)."""
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        totals = {"nv_inference_count": 0.0, "nv_inference_exec_count": 0.0}
        for line in text.splitlines():
            name = line.split("{", 1)[0]
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
        return totals["nv_inference_count"], totals["nv_inference_exec_count"]

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir / "triton-workspace", ignore_errors=True)
        started = getattr(self, "started", time.time())
        # The Python backend unpacks each model to /tmp/folderXXXXXX (not movable); ours have our served.json.
        for folder in Path("/tmp").glob("folder*"):
            try:
                if folder.stat().st_mtime >= started - 1 and (folder / "config.pbtxt").is_file():
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

