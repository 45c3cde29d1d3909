"""A plain KServe v2 REST server for a bundle written by `inferarena deploy` (copied as serve.py; the docker
target's default image runs it): the Python standard library's threaded HTTP server in front of
`BundleModel`, one model instance per measured stream, each request run as sent (no server-side batching).

    python serve.py --port 8000     # GET /v2/health/ready, GET /v2/models/NAME, POST /v2/models/NAME/infer
"""

import argparse
import json
import queue
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_model import BundleModel  # noqa: E402 - found beside this file

V2 = {"FP32": "float32", "FP16": "float16", "FP64": "float64", "INT64": "int64", "INT32": "int32",
      "INT16": "int16", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}
NAMES = {np.dtype(v): k for k, v in V2.items()}


def serve(folder: Path, host: str, port: int, instances: int) -> ThreadingHTTPServer:
    pool: queue.Queue = queue.Queue()
    for _ in range(max(1, instances)):
        pool.put(BundleModel(folder))
    spec = json.loads((folder / "model.json").read_text())
    name = spec["name"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path in ("/v2/health/ready", "/v2/health/live", f"/v2/models/{name}/ready"):
                return self._send(200, {})
            if self.path == f"/v2/models/{name}":
                return self._send(200, {"name": name, "platform": spec["runtime"], "inputs": _meta(spec["inputs"]),
                                        "outputs": _meta(spec["outputs"])})
            return self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self):  # noqa: N802
            if self.path != f"/v2/models/{name}/infer":
                return self._send(404, {"error": f"no route {self.path}; POST /v2/models/{name}/infer"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                inputs = {i["name"]: np.asarray(i["data"], dtype=V2.get(i.get("datatype"), "float32")).reshape(i["shape"])
                          for i in body["inputs"]}
            except Exception as exc:  # a malformed request: say what was wrong
                return self._send(400, {"error": f"expected a KServe v2 JSON request: {exc}"})
            model = pool.get()
            try:
                outputs = model.predict(inputs)
            except Exception as exc:
                return self._send(400, {"error": str(exc)})
            finally:
                pool.put(model)
            self._send(200, {"model_name": name, "outputs": [
                {"name": k, "shape": list(v.shape), "datatype": NAMES.get(v.dtype, "FP32"), "data": v.ravel().tolist()}
                for k, v in outputs.items()]})

        def _send(self, status, document):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


def _meta(tensors):
    return [{"name": t["name"], "datatype": NAMES.get(np.dtype(t["dtype"]), "BYTES"),
             "shape": [-1 if d is None else d for d in t["shape"]]} for t in tensors]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--instances", type=int, default=None, help="model instances (default: model.json's)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    count = args.instances or json.loads((here / "model.json").read_text()).get("instances", 1)
    server = serve(here, args.host, args.port, count)
    print(f"serving on http://{args.host}:{server.server_address[1]}", flush=True)
    server.serve_forever()
