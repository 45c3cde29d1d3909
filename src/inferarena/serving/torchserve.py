"""TorchServe: its Java frontend batches requests (`batchSize`, `maxBatchDelay`) for Python workers.

The model runs in our handler (`torchserve_handler`, wrapping `backend.OrtModel`), packed with
`model.onnx` and `served.json` into a .mar by torch-model-archiver. The frontend runs as our own
child process (`java ... org.pytorch.serve.ModelServer`, what `torchserve --start` would launch),
not through `torchserve --start/--stop`: those go through a global pid file, and `--stop` kills
whatever process it names. Logs and temporary files go to the run's folder (LOG_LOCATION, TMPDIR,
java.io.tmpdir). Its own environment holds torchserve, the archiver, onnxruntime, and the two
packages its worker imports without declaring them: pyyaml and torch.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from inferarena.envs import Environment, source_path
from inferarena.errors import InferarenaError
from inferarena.serving.process import ServerFailed
from inferarena.serving.servers import Batching, ModelServer, ServedModel, external_data


class TorchServe(ModelServer):
    name = "torchserve"
    protocol = "torchserve"
    environment = Environment("torchserve", ("torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml",
                                             "onnxruntime", "numpy"))
    port_names = ("http", "management", "metrics", "grpc", "grpc_management")

    def command(self, models: list[ServedModel], batching: Batching, workdir: Path, python: Path, ports):
        store, tmp = workdir / "model-store", workdir / "tmp"
        store.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        handler = Path(__file__).with_name("torchserve_handler.py")
        for model in models:
            config = model.folder / "ts-config.yaml"
            config.write_text(f"minWorkers: {batching.instances}\nmaxWorkers: {batching.instances}\n"
                              f"batchSize: {batching.max_batch_size}\nmaxBatchDelay: {int(round(batching.max_delay_ms))}\n"
                              "responseTimeout: 60\ndeviceType: cpu\n")
            archive = [str(python.parent / "torch-model-archiver"), "--model-name", model.name, "--version", "1.0",
                       "--serialized-file", str(model.folder / "model.onnx"), "--handler", str(handler),
                       "--extra-files", ",".join(str(model.folder / f) for f in ("served.json", *external_data(
                           model.folder / "model.onnx"))), "--export-path", str(store),
                       "-c", str(config), "--force"]
            done = subprocess.run(archive, capture_output=True, text=True)
            if done.returncode != 0:
                raise InferarenaError(f"torch-model-archiver failed: {(done.stderr or done.stdout).strip()[-300:]}",
                                      "check the torchserve environment")
        properties = workdir / "config.properties"
        properties.write_text("\n".join([
            f"inference_address=http://127.0.0.1:{ports['http']}",
            f"management_address=http://127.0.0.1:{ports['management']}",
            f"metrics_address=http://127.0.0.1:{ports['metrics']}",
            "grpc_inference_address=127.0.0.1", "grpc_management_address=127.0.0.1",
            f"grpc_inference_port={ports['grpc']}", f"grpc_management_port={ports['grpc_management']}",
            f"model_store={store}", "disable_token_authorization=true", "enable_envvars_config=false",
            "install_py_dep_per_model=false", "disable_system_metrics=true", "metrics_mode=prometheus",
            "number_of_netty_threads=2", "netty_client_threads=2", "job_queue_size=1000", "vmargs=-XX:-UsePerfData",
        ]) + "\n")
        site = next((python.parent.parent / "lib").glob("python3*/site-packages"))
        command = ["java", "-XX:-UsePerfData", f"-Dmodel_server_home={site}", f"-Djava.io.tmpdir={tmp}",
                   "-cp", f".:{site}/ts/frontend/*", "org.pytorch.serve.ModelServer", "--python", str(python),
                   "-f", str(properties), "-s", str(store), "-ncs", "--disable-token-auth",
                   "-m", *[f"{m.name}={m.name}.mar" for m in models]]
        env = {"LOG_LOCATION": str(workdir / "logs"), "METRICS_LOCATION": str(workdir / "logs"), "TEMP": str(tmp),
               "TMPDIR": str(tmp), "PYTHONPATH": source_path()}
        return command, env

    def base_url(self, ports) -> str:
        return f"http://127.0.0.1:{ports['http']}"

    def ready_urls(self, ports, models):
        return [f"{self.base_url(ports)}/ping"]

    def ready_check(self, ports, models, workdir: Path | None = None):
        """/ping answers before the Python workers load (or while they crash-loop): wait for READY workers,
        and fail at once on a worker error, which TorchServe would retry forever."""
        def check() -> bool:
            log = (workdir or Path(".")) / "logs" / "model_log.log"
            if log.is_file():
                failed = [line for line in log.read_text(errors="replace").splitlines()
                          if "MODEL_LOG" in line and ("Error" in line or "Fail" in line)]
                if failed:
                    raise ServerFailed(f"torchserve's worker failed: {failed[-1].split('MODEL_LOG - ')[-1][:300]}",
                                       f"see {log}")
            for model in models:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ports['management']}/models/{model.name}",
                                                timeout=2) as response:
                        workers = json.loads(response.read())[0].get("workers", [])
                except (OSError, ValueError, IndexError):
                    return False
                if not workers or any(w.get("status") != "READY" for w in workers):
                    return False
            return True

        return check

