"""Evaluation data from gensim's test set, fetched once into a cache and verified by sha256.

gensim ships human similarity judgments (the Lee corpus, WordSim-353, SimLex-999) inside its
wheels under `gensim/test/test_data/`. We need only those few files, not gensim: gensim pins numpy
and compiles extensions, so installing it to read four text files would be a poor trade. A wheel is
a zip, so the files are taken straight out of one. The hashes pin the content, not the wheel: with
line endings made LF (Windows wheels ship them as CRLF), the files are byte-identical in gensim
4.3.3 and 4.4.0 on every platform, so any of those wheels, or an installed gensim, is a valid source.

Example:
    folder = ensure_files(["wordsim353.tsv"], Path.home() / ".cache/inferarena/eval-data/gensim")
    lines = (folder / "wordsim353.tsv").read_text().splitlines()
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from inferarena.errors import RuntimeUnavailable

GENSIM_VERSION = "4.4.0"
# sha256 of each file with LF line endings, as shipped in gensim 4.3.3 and 4.4.0 wheels.
GENSIM_FILES: dict[str, str] = {
    "lee.cor": "a878f9a58f6743c32985c56c2f2f75988386216b38a4023a01fd3bcf7884d93e",
    "similarities0-1.txt": "23762bc6b728897144dda3d324a2c032dc1e059e1009806226d64b6dd123ed79",
    "wordsim353.tsv": "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
    "simlex999.txt": "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
}
WHEEL_DIR = "gensim/test/test_data/"

# gensim has no pure-Python wheel. Pinning one platform's wheel lets pip fetch the same file from
# any host and any Python version, since nothing is installed.
PIP_DOWNLOAD = [
    "pip", "download", f"gensim=={GENSIM_VERSION}", "--no-deps", "--only-binary=:all:",
    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
]


def ensure_files(names: list[str], data_dir: Path, *, download: bool = True) -> Path:
    """Return `data_dir` once it holds every file in `names` with its known sha256.

    Sources, first hit wins: the folder itself; a gensim wheel placed in the folder; an installed
    gensim; a wheel downloaded with pip. Raises RuntimeUnavailable when none of them has the data.
    """
    missing = [name for name in names if not _verified(data_dir / name, name)]
    if not missing:
        return data_dir
    for source in (*sorted(data_dir.glob("gensim-*.whl")), _installed_gensim()):
        if source is not None:
            missing = _copy_from(source, missing, data_dir)
    why = "downloading was not allowed"
    if missing and download:
        with tempfile.TemporaryDirectory(prefix="inferarena-gensim-") as tmp:
            wheel, why = _download_wheel(Path(tmp))
            if wheel is not None:
                # Take every file while the wheel is here, so other evaluators need no download.
                _copy_from(wheel, list(GENSIM_FILES), data_dir)
                missing = [name for name in missing if not _verified(data_dir / name, name)]
                why = "the downloaded wheel does not hold them with the expected sha256"
    if missing:
        raise RuntimeUnavailable(
            f"evaluation data {', '.join(missing)} (gensim's test data) is not in {data_dir}: {why}",
            f"where PyPI is reachable, run `python -m {' '.join(PIP_DOWNLOAD)} -d {data_dir}` "
            "(then copy that folder here if it is another machine), or choose a data folder that holds the files",
        )
    return data_dir


def _verified(path: Path, name: str) -> bool:
    return path.is_file() and _matches(path.read_bytes(), name)


def _matches(content: bytes, name: str) -> bool:
    return hashlib.sha256(content.replace(b"\r\n", b"\n")).hexdigest() == GENSIM_FILES[name]


def _installed_gensim() -> Path | None:
    # find_spec on a top-level package locates it without importing it (gensim imports scipy et al.).
    spec = importlib.util.find_spec("gensim")
    return Path(spec.origin).parent / "test" / "test_data" if spec and spec.origin else None


def _copy_from(source: Path, names: list[str], data_dir: Path) -> list[str]:
    """Copy each verified file in `names` from a wheel or a folder; return those still missing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    still_missing = []
    for name in names:
        content = _read(source, name)
        if content is None or not _matches(content, name):
            still_missing.append(name)
            continue
        # Write then rename, so a concurrent reader never sees half a file.
        partial = data_dir / f".{name}.{os.getpid()}.partial"
        partial.write_bytes(content.replace(b"\r\n", b"\n"))
        partial.replace(data_dir / name)
    return still_missing


def _read(source: Path, name: str) -> bytes | None:
    if source.is_dir():
        path = source / name
        return path.read_bytes() if path.is_file() else None
    try:
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(WHEEL_DIR + name)
    except (KeyError, zipfile.BadZipFile, OSError):
        return None


def _download_wheel(dest: Path) -> tuple[Path | None, str]:
    """The wheel pip downloaded into `dest`, or None and why not."""
    command = [sys.executable, "-m", *PIP_DOWNLOAD, "--retries", "1", "--timeout", "20",
               "--disable-pip-version-check", "--quiet", "-d", str(dest)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pip did not run ({exc})"
    wheels = sorted(dest.glob("gensim-*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = ([line for line in lines if line.startswith("ERROR")] or lines or ["no wheel downloaded"])[-1]
        return None, f"pip download gensim=={GENSIM_VERSION} failed ({last})"
    return wheels[0], ""
