"""A BERT-shaped Hugging Face folder with random weights, for speed measurements only: the GPU check builds
it on the machine itself (our bundled models are too large to carry there). Named and marked random-init,
so no figure from it is mistaken for a trained model's accuracy.

Example: python scripts/make_random_bert.py --out /tmp/bert-base-random-init --tokenizer .device-wheels/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

SIZES = {"base": (12, 768, 12, 3072), "tiny": (2, 64, 2, 128)}  # layers, hidden, heads, intermediate


def build(out: Path, tokenizer: Path, size: str = "base", seed: int = 0) -> Path:
    import torch
    import transformers

    layers, hidden, heads, intermediate = SIZES[size]
    config = transformers.BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=heads, intermediate_size=intermediate,
                                     max_position_embeddings=512)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    transformers.BertModel(config).eval().save_pretrained(out)
    shutil.copy(tokenizer, out / "tokenizer.json")
    saved = json.loads((out / "config.json").read_text())
    saved["inferarena_note"] = (f"random-init BERT-{size} ({layers}x{hidden}), seed {seed}: for speed and energy "
                                "only, its outputs mean nothing")
    (out / "config.json").write_text(json.dumps(saved, indent=2))
    (out / "README.md").write_text(saved["inferarena_note"] + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True, help="a BERT WordPiece tokenizer.json")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    args = parser.parse_args()
    print(build(args.out, args.tokenizer, args.size))


if __name__ == "__main__":
    main()
