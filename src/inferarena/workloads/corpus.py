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
# A corpus line is one input; longer ones are a file that is not a corpus (a dump, a log, a minified blob).
MAX_TEXT_CHARS = 100_000


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
    data = path.read_bytes()
    if (nul := data.find(b"\0")) >= 0:
        raise ConfigError(f"{path} is binary, not text (a NUL byte at offset {nul})",
                          "pass a UTF-8 text file: one text a line, or JSONL with a 'text' field")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line} is not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})",
                          "save the file as UTF-8") from None
    numbered = [(n, line.strip()) for n, line in enumerate(content.splitlines(), 1) if line.strip()]
    for number, line in numbered:
        if len(line) > MAX_TEXT_CHARS:
            raise ConfigError(f"{path}:{number} is one text of {len(line):,} characters, over the {MAX_TEXT_CHARS:,} "
                              "a corpus line may hold", "split it into texts, one a line")
    if path.suffix == ".jsonl":
        texts = []
        for number, line in numbered:
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError, IndexError):
                text = None
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{path}:{number} is not a JSON object with a non-empty 'text' string",
                                  "fix that line or use plain text") from None
            texts.append(text)
    else:
        texts = [line for _, line in numbered]
    if not texts:
        raise ConfigError(f"text file {path} is empty", "put one text per line")
    rng = random.Random(seed)
    return texts[:count] if len(texts) >= count else [texts[rng.randrange(len(texts))] for _ in range(count)]
