"""Folders the tool writes runs, logs, caches and served models into are private to the user (0700):
they hold the user's model, its inputs and outputs, and server logs, and a shared machine's other
users have no business reading them. Temporary folders come from `tempfile`, which makes them 0700."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`mkdir -p path`, every folder it creates mode 0700. Folders that exist keep their mode: a
    --cache-dir or --db folder the user chose (even /tmp) is theirs to set."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    return path


def link_or_copy(src: str, dst: str) -> str:
    """A hard link costs no space and survives the source being deleted; across file systems, copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
