"""Text corpora: the default one (paragraphs of the Python standard library's docstrings) and user files.

The stdlib docstrings give a realistic spread of lengths (median about 30 tokens) without any download.
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
from pathlib import Path

from inferarena.errors import ConfigError

_SPACE = re.compile(r"\s+")


def stdlib_paragraphs(count: int, seed: int) -> list[str]:
    """`count` docstring paragraphs, sampled reproducibly from the stdlib's top-level modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pool: list[str] = []
    for path in sorted(stdlib.glob("*.py")):
        pool.extend(_paragraphs(path))
        if len(pool) >= 4 * count:
            break
    if not pool:
        raise ConfigError("found no docstrings in the standard library", "pass a corpus with --inputs FILE.txt")
    rng = random.Random(seed)
    return [pool[rng.randrange(len(pool))] for _ in range(count)] if len(pool) < count else rng.sample(pool, count)


def _paragraphs(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            for block in (doc or "").split("\n\n"):
                text = _SPACE.sub(" ", block).strip()
                if 40 <= len(text) <= 2000 and not text.startswith(">>>"):
                    found.append(text)
    return found


def read_texts(path: Path, count: int, seed: int) -> list[str]:
    """Texts from a user file: one a line, or JSONL objects with a 'text' field."""
    if not path.is_file():
        raise ConfigError(f"text file {path} does not exist", "pass an existing .txt or .jsonl file")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(lines, 1):
            try:
                texts.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ConfigError(
                    f"{path}:{number} is not a JSON object with a 'text' field", "fix that line or use plain text"
                ) from None
    else:
        texts = lines
    if not texts:
        raise ConfigError(f"text file {path} is empty", "put one text per line")
    rng = random.Random(seed)
    return texts[:count] if len(texts) >= count else [texts[rng.randrange(len(texts))] for _ in range(count)]
