"""Embedding evaluators on human similarity judgments from gensim's test data.

Each scores a model by the Spearman correlation between its cosine similarities and the mean human
rating of the same pairs: the standard intrinsic check that an embedding still orders meaning the
way people do, which is what a quantized variant can lose while keeping a high cosine to FP32.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np

from inferarena.evaluators.data import ensure_files
from inferarena.evaluators.task import Evaluator, spearman


class LeeDocSim(Evaluator):
    """The 50 Lee news documents, every pair i<j (1,225) against the human similarity matrix.

    Documents are 45 to 126 words, and a workload that truncates at 128 tokens (as MiniLM's does)
    cuts the tail of the longest few: the score is then for what the model sees, which is also
    what it sees in service.
    """

    name = "lee_docsim"
    task = "embedding"
    metric = "spearman"
    default = True

    def texts(self) -> list[str]:
        return self._data[0]

    def score(self, embeddings: np.ndarray) -> float:
        upper = np.triu_indices(len(embeddings), k=1)
        return spearman((embeddings @ embeddings.T)[upper], self._data[1][upper])

    @cached_property
    def _data(self) -> tuple[list[str], np.ndarray]:
        folder = ensure_files(["lee.cor", "similarities0-1.txt"], self.data_dir / "gensim", download=self.download)
        # One document per line, in Latin-1 (the corpus has a bare 0xA3 pound sign).
        docs = (folder / "lee.cor").read_text(encoding="latin-1").splitlines()
        human = np.loadtxt(folder / "similarities0-1.txt")
        if human.shape != (len(docs), len(docs)):
            raise ValueError(f"{len(docs)} Lee documents but a {human.shape} similarity matrix")
        return docs, human


class WordPairs(Evaluator):
    """Word pairs rated by people (tab-separated `word1 word2 score`, `#` comments).

    Each distinct word is embedded once, as a one-word sentence: that is how a sentence model
    meets short queries, not how a word-vector model is scored, so compare variants with each
    other and with the FP32 reference, not with word2vec tables.
    """

    file: ClassVar[str]
    task = "embedding"
    metric = "spearman"

    def texts(self) -> list[str]:
        return self._data[0]

    def score(self, embeddings: np.ndarray) -> float:
        _, left, right, human = self._data
        return spearman((embeddings[left] * embeddings[right]).sum(axis=1), human)

    @cached_property
    def _data(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        folder = ensure_files([self.file], self.data_dir / "gensim", download=self.download)
        rows = [line.split("\t") for line in (folder / self.file).read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        index: dict[str, int] = {}
        for a, b, _ in rows:
            index.setdefault(a, len(index))
            index.setdefault(b, len(index))
        left = np.array([index[a] for a, _, _ in rows])
        right = np.array([index[b] for _, b, _ in rows])
        return list(index), left, right, np.array([float(s) for _, _, s in rows])


class WordSim353(WordPairs):
    """WordSim-353: relatedness as well as similarity (`tiger`/`cat`, but also `stock`/`market`)."""

    name = "wordsim353"
    file = "wordsim353.tsv"


class SimLex999(WordPairs):
    """SimLex-999: similarity only, so related antonyms (`old`/`new`) rank low; harder than WordSim."""

    name = "simlex999"
    file = "simlex999.txt"
