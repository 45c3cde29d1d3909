"""The environment a run was measured in: CPU, cores, GPUs, OS and the versions of every package involved."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
from typing import Any

from inferarena import __version__, hardware
from inferarena.hardware import host


def capture() -> dict[str, Any]:
    h = host()
    return {
        "cpu_model": h.cpu_model,
        "logical_cores": h.logical_cores,
        "physical_cores": h.physical_cores,
        "memory_gb": h.memory_gb,
        "native_bf16": h.has_bf16,
        "native_fp16": h.has_fp16,
        "cpu_features": h.features,
        # Facts from INFERARENA_HOST, not read off this machine: the figures are this machine's.
        **({"simulated_host": True} if hardware.simulated() is not None else {}),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "inferarena": __version__,
        "packages": package_versions(),
        # Each NVIDIA GPU NVML lists (name, memory, driver, CUDA version, compute capability); absent without one.
        **({"gpus": [g.as_dict() for g in found]} if (found := hardware.gpus()) else {}),
    }


def package_versions() -> dict[str, str]:
    """Installed versions of inferarena's dependencies, extras included (read from its own metadata)."""
    try:
        requirements = importlib.metadata.requires("inferarena") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    versions = {}
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if name == "inferarena":
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return dict(sorted(versions.items()))
