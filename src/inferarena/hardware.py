"""What the host CPU is and can do, read without importing any framework."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Host:
    cpu_model: str
    logical_cores: int
    physical_cores: int | None
    flags: frozenset[str] = field(repr=False)
    memory_gb: float = 0.0

    @property
    def has_bf16(self) -> bool:
        """Native BF16 math (AVX512-BF16 or AMX); elsewhere BF16 is emulated and slow."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def has_fp16(self) -> bool:
        """Native FP16 math (AVX512-FP16 or AMX-FP16, Sapphire Rapids and later)."""
        return bool({"avx512_fp16", "amx_fp16"} & self.flags)

    def supports(self, precision: str) -> bool:
        """Whether the CPU computes in this precision natively (fp32 and integer types always)."""
        return {"bf16": self.has_bf16, "fp16": self.has_fp16}.get(precision, True)


@lru_cache(maxsize=1)
def host() -> Host:
    model, flags = platform.processor() or platform.machine(), frozenset()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    return Host(
        cpu_model=model,
        logical_cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        flags=flags,
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
    )


def node_info() -> dict:
    """The machine a job runs on, as each variant records it: what rankings group by (`hardware_class`).
    A cluster launcher adds its own node id (`node_id`); elsewhere it is None."""
    h = host()
    return {"hostname": socket.gethostname(), "cpu_model": h.cpu_model, "logical_cores": h.logical_cores,
            "physical_cores": h.physical_cores, "memory_gb": h.memory_gb, "accelerator": accelerator(),
            "node_id": None}


def accelerator() -> str | None:
    """The GPU the kernel driver lists (NVIDIA's /proc entries), read without importing a framework."""
    models = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                models.append(value.strip())
    if not models:
        return None
    return f"{len(models)}x {models[0]}" if len(models) > 1 else models[0]


def hardware_class(node: dict | None) -> str:
    """Which variants may be ranked against each other: the same CPU model, core count and accelerator.
    Variants stored before nodes were recorded all fall in one unnamed class."""
    if not node:
        return "unrecorded"
    parts = [str(node.get("cpu_model") or "unknown CPU"), f"{node.get('logical_cores')} cores"]
    if node.get("accelerator"):
        parts.append(str(node["accelerator"]))
    return " · ".join(parts)


def by_class(variants: list) -> dict[str, list]:
    """Variants (anything with a `node`) grouped by hardware class, in the order the classes first appear."""
    groups: dict[str, list] = {}
    for v in variants:
        groups.setdefault(hardware_class(v.node), []).append(v)
    return groups


def match_class(wanted: str, classes: list[str]) -> list[str]:
    """The classes that `--hardware` names: the exact class, else those containing it (any case)."""
    if wanted in classes:
        return [wanted]
    return [c for c in classes if wanted.lower() in c.lower()]
