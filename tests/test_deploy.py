"""`inferarena deploy`: bundles for each target from a run stored by the real CLI on a tiny MLP (and a tiny
BERT on torch), their configs parsed back, the artifact's sha256, the errors, and (slow) the bundles served
by real MLServer, TorchServe and Triton on 127.0.0.1, answering as the variant does."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from conftest import make_mlp_onnx, quick_config
from typer.testing import CliRunner

from inferarena.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One run of a tiny MLP on ONNX Runtime and OpenVINO (plus NNCF INT8 as OpenVINO IR, and a pipeline that
    fails), as `inferarena run` stores it."""
    root = tmp_path_factory.mktemp("deploy-run")
    model = make_mlp_onnx(root / "mlp.onnx")
    pipelines = [{"name": "starved", "passes": [{"name": "ort_quantize",
                                                 "config": {"mode": "static", "calibration_samples": 999}}]}]
    try:
        import nncf  # noqa: F401

        pipelines.append({"name": "nncf", "passes": [{"name": "nncf_quantize", "config": {"calibration_samples": 16}}]})
    except ImportError:
        pass
    cfg = quick_config(root, pipelines=pipelines, runtimes=[{"name": "onnxruntime"},
                                                            {"name": "openvino", "precisions": ["fp32"]}],
                       fidelity={"min_cos_lossy": -1.0})
    result = invoke("run", "--model", model, "--config", cfg, "--db", root / "r.db", "--cache-dir", root / "cache",
                    "--debug")  # in this process: seconds, not a process per variant
    assert result.exit_code == 0, result.output
    from inferarena.store import SQLiteStore

    run = SQLiteStore(root / "r.db").load_run(1)
    return SimpleNamespace(db=root / "r.db", root=root, run=run, variants={v.name: v for v in run.variants})


def deploy(stored, tmp_path, target, *extra):
    out = tmp_path / target
    result = invoke("deploy", "1", "--target", target, "-o", out, "--db", stored.db, *extra)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "inferarena-bundle.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def request_of(readme: str) -> tuple[str, dict]:
    """The README's curl: its URL and JSON body, as a user would copy them."""
    found = re.search(r"curl -s -X POST (\S+) .*?-d '(.*?)'", readme, re.S)
    return found.group(1), json.loads(found.group(2))


def arrays(body: dict) -> dict[str, np.ndarray]:
    types = {"FP32": np.float32, "INT64": np.int64}
    return {i["name"]: np.asarray(i["data"], dtype=types[i["datatype"]]).reshape(i["shape"]) for i in body["inputs"]}


def ort_answer(path: Path, body: dict) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, arrays(body))[0]


def cosine(a, b) -> float:
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def test_triton_bundle_of_the_recommendation(stored, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from inferarena.recommend import recommend
    from inferarena.store import SQLiteStore

    out, manifest = deploy(stored, tmp_path, "triton")
    pick = recommend(stored.run, SQLiteStore(stored.db).load_sample_rounds(1), "latency").variant
    assert manifest["variant"]["name"] == pick and manifest["chosen_by"].startswith("latency profile")
    variant = stored.variants[pick]
    onnx_file = out / "mlp" / "1" / "model.onnx"
    # The artifact, byte for byte, with its sha256 and lineage in the manifest.
    assert manifest["artifact"]["path"] == "mlp/1/model.onnx"
    assert manifest["artifact"]["sha256"] == sha256(onnx_file) == sha256(Path(variant.artifact))
    assert [step["pass"] for step in manifest["lineage"]] == [p.name for p in variant.passes]
    assert {f["path"]: f["sha256"] for f in manifest["files"]}["mlp/config.pbtxt"] == sha256(out / "mlp" / "config.pbtxt")
    # config.pbtxt is Triton's ModelConfig, its tensors those of the graph (batch via max_batch_size).
    config = text_format.Parse((out / "mlp" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    expected_backend = "onnxruntime" if variant.runtime == "onnxruntime" else "openvino"
    assert config.name == "mlp" and config.backend == expected_backend and config.max_batch_size == 8
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.input] == \
        [("x", "TYPE_FP32", [4])]
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.output] == \
        [("y", "TYPE_FP32", [3])]
    assert list(config.dynamic_batching.preferred_batch_size) == [8]
    assert 100 <= config.dynamic_batching.max_queue_delay_microseconds <= 10_000
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.instance_group[0].count == manifest["serving"]["instances"]
    # The README: figures with units, the reproduce command, a request with the real input name.
    readme = (out / "README.md").read_text()
    for text in ("samples/s", " ms |", "cos_min", "MB |", "inferarena run --config reproduce.yaml", '"name":"x"'):
        assert text in readme, text
    reproduce = yaml.safe_load((out / "reproduce.yaml").read_text())
    assert reproduce["runtimes"][0]["name"] == variant.runtime and reproduce["model"] == stored.run.config["model"]


def test_triton_backend_parameters(stored, tmp_path):
    """ONNX Runtime's threads as the onnxruntime backend's keys; OpenVINO on its own backend, the ONNX file as
    default_model_filename; NNCF's IR as model.xml + model.bin."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    def config(out):
        folder = out / "mlp"
        return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())

    out, _ = deploy(stored, tmp_path, "triton", "--variant", "onnxruntime/fp32/fixed")
    ort = config(out)
    threads = stored.variants["onnxruntime/fp32/fixed"].knobs["threads"]
    assert ort.backend == "onnxruntime" and ort.parameters["intra_op_thread_count"].string_value == str(threads)
    assert ort.parameters["inter_op_thread_count"].string_value == "1"
    assert not ort.default_model_filename and (out / "mlp" / "1" / "model.onnx").is_file()

    ov_out = tmp_path / "ov"
    result = invoke("deploy", "1", "--target", "triton", "-o", ov_out, "--db", stored.db, "--variant",
                    "openvino/fp32/fixed")
    assert result.exit_code == 0, result.output
    ov = config(ov_out)
    assert ov.backend == "openvino" and ov.default_model_filename == "model.onnx"
    assert ov.parameters["PERFORMANCE_HINT"].string_value == "LATENCY"
    assert ov.parameters["INFERENCE_NUM_THREADS"].string_value == str(threads)

    if "openvino/int8/fixed@nncf" not in stored.variants:
        pytest.skip("nncf is not installed")
    ir_out = tmp_path / "ir"
    assert invoke("deploy", "1", "--target", "triton", "-o", ir_out, "--db", stored.db, "--variant",
                  "openvino/int8/fixed@nncf").exit_code == 0
    ir = config(ir_out)
    version = ir_out / "mlp" / "1"
    assert ir.backend == "openvino" and not ir.default_model_filename
    assert (version / "model.xml").is_file() and (version / "model.bin").is_file()
    manifest = json.loads((ir_out / "inferarena-bundle.json").read_text())
    source = Path(stored.variants["openvino/int8/fixed@nncf"].artifact)
    by_path = {f["path"]: f for f in manifest["artifact"]["files"]}
    assert by_path["mlp/1/model.bin"]["sha256"] == sha256(source.with_suffix(".bin"))
    assert [step["pass"] for step in manifest["lineage"]] == ["nncf_quantize"]


def test_config_text_without_tritonclient(stored):
    """Where tritonclient is missing, config.pbtxt is printed by hand: the same message once parsed."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from inferarena.deploy.deployable import resolve
    from inferarena.deploy.triton import _text, model_config, render

    config, _ = model_config(resolve(stored.run, stored.variants["openvino/fp32/fixed"]), "openvino", "model.onnx")
    parse = lambda text: text_format.Parse(text, model_config_pb2.ModelConfig())  # noqa: E731
    assert parse(_text(config)) == parse(render(config))


def test_kserve_inference_service(stored, tmp_path):
    from inferarena.deploy.kserve import missing_fields

    out, manifest = deploy(stored, tmp_path, "kserve", "--variant", "onnxruntime/fp32/fixed")
    service = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    # The schema's required fields, checked here independently of the writer's own list.
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == "mlp"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "onnx" and model["protocolVersion"] == "v2"
    assert model["storageUri"].endswith("model_repository")
    assert missing_fields(service) == []
    variant = stored.variants["onnxruntime/fp32/fixed"]
    requests = model["resources"]["requests"]
    assert requests["cpu"] == str(variant.knobs["threads"])
    assert requests["memory"] == f"{math.ceil(variant.memory['peak_rss_mb'] * 1.5)}Mi"
    assert model["resources"]["limits"] == requests
    assert (out / "model_repository" / "mlp" / "config.pbtxt").is_file()
    assert manifest["artifact"]["path"] == "model_repository/mlp/1/model.onnx"
    broken = json.loads(json.dumps(service))
    del broken["spec"]["predictor"]["model"]["storageUri"]
    assert missing_fields(broken) == ["spec.predictor.model.storageUri"]


def test_mlserver_and_torchserve_bundles(stored, tmp_path):
    out, _ = deploy(stored, tmp_path, "mlserver", "--variant", "onnxruntime/fp32/fixed")
    settings = json.loads((out / "model-settings.json").read_text())
    assert settings["implementation"] == "runtime.BundleRuntime" and (out / settings["parameters"]["uri"]).is_file()
    assert settings["max_batch_size"] == 8  # every dimension but the batch is fixed: requests can be stacked
    assert (out / "runtime.py").is_file() and (out / "bundle_model.py").is_file()

    ts, _ = deploy(stored, tmp_path, "torchserve", "--variant", "onnxruntime/fp32/fixed")
    properties = (ts / "config.properties").read_text()
    models = json.loads(re.search(r"^models=(.*)$", properties, re.M).group(1))
    assert models["mlp"]["1.0"]["batchSize"] == 8 and models["mlp"]["1.0"]["minWorkers"] >= 1
    assert "default_workers_per_model=" in properties and "number_of_netty_threads=" in properties
    assert "torch-model-archiver --model-name mlp" in (ts / "build-mar.sh").read_text()
    if shutil.which("torch-model-archiver") or _has("model_archiver"):
        with zipfile.ZipFile(ts / "model-store" / "mlp.mar") as mar:
            names = set(mar.namelist())
        assert {"handler.py", "bundle_model.py", "model.json", "model.onnx", "MAR-INF/MANIFEST.json"} <= names


def test_bundle_model_answers_as_the_variant(stored, tmp_path):
    """The bundle's own model code (what MLServer, TorchServe and the plain server run), on each runtime."""
    from inferarena.deploy.bundle_model import BundleModel

    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    for name in ("onnxruntime/fp32/fixed", "openvino/fp32/fixed"):
        out, _ = deploy(stored, tmp_path / name.replace("/", "-"), "mlserver", "--variant", name)
        got = BundleModel(out).predict({"x": x})["y"]
        assert got.shape == (5, 3) and cosine(got, ort_answer(stored.root / "mlp.onnx", {"inputs": [
            {"name": "x", "shape": [5, 4], "datatype": "FP32", "data": x.ravel().tolist()}]})) >= 0.999


def test_docker_bundle_pins_and_serves(stored, tmp_path):
    """The Dockerfile pins what the run measured with; its plain v2 server answers the README's request."""
    from inferarena.serving.process import ServerProcess, free_port

    out, manifest = deploy(stored, tmp_path, "docker", "--variant", "onnxruntime/fp32/fixed")
    packages = stored.run.environment["packages"]
    assert (out / "requirements.txt").read_text().split() == [f"onnxruntime=={packages['onnxruntime']}",
                                                             f"numpy=={packages['numpy']}"]
    assert f"FROM python:{stored.run.environment['python']}-slim" in (out / "Dockerfile").read_text()
    url, body = request_of((out / "README.md").read_text())
    port = free_port()
    server = ServerProcess("plain", [sys.executable, str(out / "app" / "serve.py"), "--host", "127.0.0.1", "--port",
                                     str(port)], tmp_path / "plain.log", out)
    with server:
        server.wait_ready([f"http://127.0.0.1:{port}/v2/health/ready"], 60)
        answer = post(url.replace("localhost:8000", f"127.0.0.1:{port}"), body)
    assert cosine(answer["outputs"][0]["data"], ort_answer(Path(manifest["artifact"]["source"]), body)) >= 0.999


def test_torch_variant_on_tritons_python_backend(stored, tmp_path, tiny_bert):
    """No Triton backend runs an HF folder: the python backend runs the bundle's model code, which answers
    as inferarena's torch runtime (mean-pooled, normalised embeddings)."""
    pytest.importorskip("torch")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from inferarena.deploy.bundle_model import BundleModel
    from inferarena.models.hf_encoder import load_embedding_module

    cfg = quick_config(tmp_path, scenarios=["single_stream"], runtimes=[{"name": "torch", "precisions": ["fp32"]}],
                       rounds={"count": 1, "noisy_spread_pct": 1e9, "drift_pct": 1e9})
    db = tmp_path / "r.db"
    # --debug: in this process (torch is loaded already); the MLP run's cache: its GEMM peaks, measured once.
    result = invoke("run", "--model", tiny_bert, "--config", cfg, "--db", db, "--cache-dir", stored.root / "cache",
                    "--shapes", "dynamic", "--debug")
    assert result.exit_code == 0, result.output
    out = tmp_path / "triton"
    result = invoke("deploy", "1", "--target", "triton", "-o", out, "--db", db)
    assert result.exit_code == 0, result.output
    folder = next(p for p in out.iterdir() if p.is_dir())
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.backend == "python" and [t.name for t in config.output] == ["sentence_embedding"]
    assert [t.name for t in config.input][:2] == ["input_ids", "attention_mask"] and list(config.output[0].dims) == [32]
    version = folder / "1"
    assert {"model.py", "bundle_model.py", "model.json"} <= {p.name for p in version.iterdir()}
    assert (version / "model" / "config.json").is_file()
    ids = np.array([[101, 2023, 2003, 1037, 3231, 102]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if len(config.input) == 3:
        feeds["token_type_ids"] = np.zeros_like(ids)
    got = BundleModel(version).predict(feeds)["sentence_embedding"]
    import torch

    module = load_embedding_module(tiny_bert, len(config.input) == 3)
    with torch.inference_mode():
        want = module(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    assert cosine(got, want) >= 0.999


@pytest.mark.parametrize("args, message", [
    (("--target", "sagemaker"), "unknown deploy target 'sagemaker'"),
    (("--target", "triton", "--variant", "tflite/fp32/fixed"), "has no variant 'tflite/fp32/fixed'"),
    (("--target", "triton", "--variant", "onnxruntime/int8/fixed@starved"), "failed in run 1"),
])
def test_bad_input_is_one_line(stored, tmp_path, args, message):
    result = invoke("deploy", "1", "-o", tmp_path / "out", "--db", stored.db, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "fix:" in result.output
    assert not (tmp_path / "out").exists()


def test_unknown_run_and_busy_folder(stored, tmp_path):
    result = invoke("deploy", "7", "--target", "triton", "-o", tmp_path / "out", "--db", stored.db)
    assert result.exit_code == 2 and "run 7 is not in" in result.output
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = invoke("deploy", "1", "--target", "triton", "-o", tmp_path / "busy", "--db", stored.db)
    assert result.exit_code == 2 and "is not empty" in result.output
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_missing_artifact(stored, tmp_path):
    """A cleaned cache: one line naming the missing file and how to rebuild it; nothing half-written."""
    artifact = Path(stored.variants["onnxruntime/fp32/fixed"].artifact)
    hidden = artifact.with_name("hidden.onnx")
    artifact.rename(hidden)
    try:
        result = invoke("deploy", "1", "--target", "docker", "-o", tmp_path / "out", "--db", stored.db,
                        "--variant", "onnxruntime/fp32/fixed")
    finally:
        hidden.rename(artifact)
    assert result.exit_code == 2 and "is gone" in result.output and str(artifact) in result.output
    assert result.output.strip().count("\n") == 0
    assert not any(p.name.startswith(".out-") for p in tmp_path.iterdir())


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- the bundles on real servers (each in the environment serve-bench creates for it) ----------------------


@pytest.mark.slow
@pytest.mark.parametrize("target,variant", [(t, "onnxruntime/fp32/fixed") for t in
                                            ("mlserver", "torchserve", "triton", "kserve", "docker")]
                         + [("triton", "openvino/fp32/fixed")])
def test_deploy_check_serves_the_bundle(stored, tmp_path, target, variant):
    """`deploy --check`: the real server on 127.0.0.1 answers the README's request as the variant does
    (cosine >= 0.999). Triton (pytriton's tritonserver 2.51, python backend only) first parses config.pbtxt as
    written and stops at the missing onnxruntime backend library, then serves it on the python backend."""
    if target == "torchserve" and shutil.which("java") is None:
        pytest.skip("TorchServe needs Java")
    out = tmp_path / target
    result = invoke("deploy", "1", "--target", target, "-o", out, "--db", stored.db, "--variant", variant, "--check")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    served = re.search(r"served by (.*?): the README's request answered, cosine (\d\.\d+) against the variant", said)
    assert served and float(served.group(2)) >= 0.999, said
    assert "(a copy; the bundle itself is unchanged)" in said
    if target in ("triton", "kserve"):
        backend = variant.split("/")[0]
        assert f"parsed config.pbtxt and stopped at the missing '{backend}' backend library" in said
        assert re.search(r"tritonserver 2\.\d+\.\d+ parsed", said), said  # the version from its startup table
        config = (out / "model_repository" if target == "kserve" else out) / "mlp" / "config.pbtxt"
        assert f'backend: "{backend}"' in config.read_text()  # the user's bundle is as written
    names = {"mlserver": "MLServer", "torchserve": "TorchServe", "triton": "tritonserver", "kserve": "tritonserver",
             "docker": "the image's app/serve.py"}
    assert served.group(1).startswith(names[target])


def test_deploy_check_refuses_what_it_cannot_compare(stored, tmp_path, monkeypatch):
    """--check without Java for TorchServe: one line that says what to install; the bundle is still written."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java" else "/bin/" + name)
    result = invoke("deploy", "1", "--target", "torchserve", "-o", tmp_path / "ts", "--db", stored.db, "--variant",
                    "onnxruntime/fp32/fixed", "--check")
    assert result.exit_code != 0 and "TorchServe needs Java" in result.output and "openjdk" in result.output
    assert "Traceback" not in result.output and (tmp_path / "ts" / "inferarena-bundle.json").is_file()


def test_serve_bench_batching_goes_into_recommend_and_the_bundle(stored, tmp_path):
    """With a serve-bench run of the same model in the store, `recommend` names the best server configuration
    (the highest peak within the SLO that held on repetition) and `deploy --target triton` writes its batching."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from inferarena.serving import bench
    from inferarena.serving.records import LoadPoint, ServeBenchResult, ServerEntry
    from inferarena.store import SQLiteStore

    db = tmp_path / "r.db"
    shutil.copyfile(stored.db, db)

    def entry(batch, delay, peak, confirmed=True):
        point = LoadPoint("rate", peak, 100, peak, slo_attainment_pct=100.0, goodput_qps=peak, meets_slo=True)
        return ServerEntry("triton", {"max_batch_size": batch, "max_delay_ms": delay, "instances": 1},
                           f"b{batch}", "ok", peak_qps_at_slo=peak, peak_confirmed=confirmed, latency_ms_p99=9.0,
                           points=[point], best={"latency_ms_p99": 9.0, "peak_qps_at_slo": peak})

    config = bench.ServeBenchConfig(model=stored.run.model)
    result = ServeBenchResult(stored.run.model, "predict", "cpu", [entry(1, 0.0, 30.0), entry(4, 3.0, 50.0),
                                                                   entry(16, 5.0, 70.0, confirmed=False)],
                              [], {}, config.slo.describe())
    serve_run = bench.save(SQLiteStore(db), config, result, {})
    shown = invoke("recommend", "1", "--db", db, "--json", tmp_path / "rec.json")
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert f"Serve it with: triton, max batch 4 within 3 ms: 50 QPS within latency ≤ 100 ms for 99 % of " \
           f"requests (serve-bench run {serve_run}" in said, said
    assert json.loads((tmp_path / "rec.json").read_text())["serving"]["max_batch_size"] == 4
    out = tmp_path / "bundle"
    made = invoke("deploy", "1", "--target", "triton", "-o", out, "--db", db)
    assert made.exit_code == 0, made.output
    config_pb = text_format.Parse((out / "mlp" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config_pb.max_batch_size == 4 and config_pb.dynamic_batching.max_queue_delay_microseconds == 3000
    assert f"serve-bench run {serve_run}" in (out / "README.md").read_text()
    manifest = json.loads((out / "inferarena-bundle.json").read_text())
    assert manifest["serving"]["batching_from"].startswith("serve-bench's best on triton")
    # Another server's bundle keeps the variant's own batching: serve-bench measured triton only.
    other = invoke("deploy", "1", "--target", "mlserver", "-o", tmp_path / "ml", "--db", db)
    assert other.exit_code == 0 and "serve-bench" not in (tmp_path / "ml" / "README.md").read_text()


def test_the_check_serves_a_variant_with_its_own_runtime():
    """An OpenVINO or torch variant is served from the server's environment plus that runtime at the version
    it was measured with (a distinct environment); ONNX Runtime variants use the server's own."""
    from inferarena.deploy.check import environment_for
    from inferarena.serving.triton import Triton

    def variant(runtime, versions):
        return SimpleNamespace(runtime=runtime, versions=lambda: versions)

    assert environment_for(Triton.environment, variant("onnxruntime", {"onnxruntime": "1.23.0"})) is Triton.environment
    ov = environment_for(Triton.environment, variant("openvino", {"openvino": "2026.0.0", "numpy": "2.3"}))
    assert ov.name == "triton-openvino" and ov.requirements[-1] == "openvino==2026.0.0"
    assert ov.requirements[:-1] == Triton.environment.requirements and ov.key != Triton.environment.key
    torch = environment_for(Triton.environment, variant("torch", {"transformers": "4.57.1+local"}))
    assert torch.requirements[-1] == "transformers==4.57.1"
