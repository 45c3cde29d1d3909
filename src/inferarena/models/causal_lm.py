"""The generative formats, `gguf` (llama.cpp's single file) and `hf_causal_lm` (a Hugging Face
folder): describe one as an Artifact whose meta carries the architecture figures the decode roofline
needs and the tokenizer.json every runtime's token ids agree with (see models/llm.py).

A format, not a model source: the sources in models/llm.py and the passes that write these formats
(gguf_quantize, gguf_to_hf) both describe their results here.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable

TOKENIZER_CACHE = Path.home() / ".cache" / "inferarena" / "tokenizers"
# llama.cpp's `general.file_type` numbers (enum llama_ftype) for the types this project builds.
GGUF_FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 15: "q4_k_m",
                   17: "q5_k_m", 18: "q6_k", 32: "bf16"}
# What a generative model is measured as, besides its own weights on llama.cpp and FP32/BF16 on transformers.
LLM_PIPELINES = {"gguf-q8_0": ["llama_cpp"], "gguf-f16": ["llama_cpp"], "ort-genai-int4": ["ort_genai"],
                 "ort-genai-int8": ["ort_genai"], "ov-genai-int4": ["openvino_genai"],
                 "ov-genai-int8": ["openvino_genai"]}


def gguf_artifact(path: Path, name: str) -> Artifact:
    """Read a GGUF's header (architecture, file type) and make sure its tokenizer is at hand as tokenizer.json."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise RuntimeUnavailable("reading GGUF files needs the gguf package", "pip install 'inferarena[llm]'") from None
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is not a usable GGUF
        raise ModelError(f"{path} is not a readable GGUF file ({type(exc).__name__}: {str(exc)[:120]})",
                         "re-download the model or convert it again with llama.cpp") from None
    fields = {key: _field(reader, key) for key in reader.fields}
    arch = fields.get("general.architecture")
    if not arch:
        raise ModelError(f"{path} has no general.architecture", "the file is not a model GGUF")
    layers, heads = fields.get(f"{arch}.block_count"), fields.get(f"{arch}.attention.head_count")
    hidden = fields.get(f"{arch}.embedding_length")
    if not (layers and heads and hidden):
        raise ModelError(f"{path}: GGUF lacks block_count, head_count or embedding_length for {arch}",
                         "convert the model again with llama.cpp's convert_hf_to_gguf.py")
    weight_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    tensor_types = dict(Counter(t.tensor_type.name.lower() for t in reader.tensors).most_common())
    meta = _llm_meta(name, arch, layers=layers, hidden=hidden, heads=heads,
                     kv_heads=fields.get(f"{arch}.attention.head_count_kv") or heads,
                     context=fields.get(f"{arch}.context_length") or 2048,
                     vocab=len(fields.get("tokenizer.ggml.tokens") or []) or None, weight_bytes=weight_bytes,
                     precision=GGUF_FILE_TYPES.get(fields.get("general.file_type"), "gguf"),
                     eos=fields.get("tokenizer.ggml.eos_token_id"))
    meta["tokenizer"] = str(_gguf_tokenizer(path))
    meta["tensor_types"] = tensor_types  # what llama.cpp really wrote: k-quants fall back on odd row sizes
    return Artifact(path=path, format="gguf", meta=meta)


def causal_lm_artifact(folder: Path, name: str, **extra: Any) -> Artifact:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_path} cannot be read ({exc})", "point --model at a Hugging Face model folder") from None
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{folder} has no tokenizer.json", "save the tokenizer with a fast tokenizer")
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not weights:
        raise ModelError(f"{folder} holds no weights (*.safetensors or pytorch_model*.bin)", "copy the weights into it")
    text = config.get("text_config", config)
    heads = text.get("num_attention_heads")
    meta = _llm_meta(name, text.get("model_type", "unknown"), layers=text.get("num_hidden_layers"),
                     hidden=text.get("hidden_size"), heads=heads, kv_heads=text.get("num_key_value_heads") or heads,
                     context=text.get("max_position_embeddings") or 2048, vocab=text.get("vocab_size"),
                     weight_bytes=sum(w.stat().st_size for w in weights), precision="fp32",
                     eos=text.get("eos_token_id"), head_dim=text.get("head_dim"))
    meta["tokenizer"] = str(folder / "tokenizer.json")
    meta.update(extra)
    return Artifact(path=folder, format="hf_causal_lm", meta=meta)


def _llm_meta(name: str, arch: str, *, layers, hidden, heads, kv_heads, context, vocab, weight_bytes: int,
              precision: str, eos, head_dim=None) -> dict[str, Any]:
    return {
        "name": name, "input_kind": "prompt", "task": "text-generation", "kind": "generate", "architecture": arch,
        "layers": int(layers), "hidden": int(hidden), "heads": int(heads), "kv_heads": int(kv_heads),
        "head_dim": int(head_dim or int(hidden) // int(heads)), "context_length": int(context),
        "vocab": int(vocab) if vocab else None, "weight_bytes": int(weight_bytes), "precision": precision,
        "eos_token_id": eos if isinstance(eos, int) else None, "default_pipelines": LLM_PIPELINES,
    }


def _field(reader, key: str):
    """A GGUF metadata value as a Python scalar, string or list."""
    field = reader.fields[key]
    try:
        value = field.contents()
    except Exception:  # noqa: BLE001 - a field the reader cannot decode is simply absent
        return None
    return value


def _gguf_tokenizer(path: Path) -> Path:
    """The GGUF's own tokenizer as tokenizer.json (via transformers' GGUF converter), cached by file identity."""
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = TOKENIZER_CACHE / key
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise RuntimeUnavailable("reading a GGUF's tokenizer needs transformers",
                                 "pip install 'inferarena[llm]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"the tokenizer inside {path.name} cannot be read ({type(exc).__name__}: {str(exc)[:150]})",
                         "use a GGUF converted by a recent llama.cpp") from None
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return folder / "tokenizer.json"
