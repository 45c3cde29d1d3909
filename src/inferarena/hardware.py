"""What the host CPU is and can do, read without importing any framework."""

from __future__ import annotations

import os
import platform
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
