"""What the host's CPU and GPUs are and can do, read without importing any framework.

GPUs are read through NVML (nvidia-ml-py's `pynvml`, a thin binding to the driver's library), never
through torch: the orchestrator decides the device axis (`resolve_device`) before any worker imports a
framework, and a worker's runtime checks again that its own framework sees the device.

A simulated host: `INFERARENA_HOST` names a JSON file (or holds the JSON itself) whose facts replace the
ones read here: `cpu_model`, `logical_cores`, `physical_cores`, `flags` (a list of /proc/cpuinfo flags),
`memory_gb` and `gpus` (a list of {name, memory_gb, compute_capability: [major, minor]}). Every process
of the run, workers included, inherits it, so what a run decides from the host (the plan, knob spaces,
price, energy estimate, peak cache key, hardware class) can be tried for a 192-core or AMX machine on
this one. The work still runs on the real CPU; the environment card and `doctor` say the host is simulated.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import psutil

from inferarena.errors import ConfigError

DEVICES = ("cpu", "cuda", "auto")  # what `--device` takes; `auto` resolves to one of the others


# The CPU features that decide which kernels run, as /proc/cpuinfo names them and as people write them.
FEATURES = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX512F", "avx512_vnni": "AVX512-VNNI",
            "avx_vnni": "AVX-VNNI", "avx512_bf16": "AVX512-BF16", "avx512_fp16": "AVX512-FP16",
            "amx_tile": "AMX-TILE", "amx_int8": "AMX-INT8", "amx_bf16": "AMX-BF16", "amx_fp16": "AMX-FP16",
            "asimd": "NEON", "asimddp": "NEON-DOTPROD", "i8mm": "I8MM", "bf16": "ARM-BF16", "sve": "SVE", "sve2": "SVE2"}


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

    @property
    def has_amx(self) -> bool:
        """Intel AMX tiles (Sapphire Rapids and later): INT8 and BF16 matmuls on the tile unit."""
        return "amx_int8" in self.flags or "amx_bf16" in self.flags

    @property
    def features(self) -> list[str]:
        """The features that matter for inference kernels, in FEATURES' order, e.g. ["AVX2", "AVX512F", ...]."""
        return [name for flag, name in FEATURES.items() if flag in self.flags]

    def supports(self, precision: str) -> bool:
        """Whether the CPU computes in this precision natively (fp32 and integer types always)."""
        return {"bf16": self.has_bf16, "fp16": self.has_fp16}.get(precision, True)


SIMULATED = "INFERARENA_HOST"


def simulated() -> dict | None:
    """The simulated host's facts (`INFERARENA_HOST`), or None on a real one. A bad value is a one-line error."""
    value = os.environ.get(SIMULATED, "").strip()
    if not value:
        return None
    try:
        facts = json.loads(value if value.startswith("{") else Path(value).read_text())
        if not isinstance(facts, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{SIMULATED} is neither a JSON object nor a readable JSON file ({exc})",
                          f"unset {SIMULATED}, or set it to a file like {{\"logical_cores\": 64, \"flags\": [\"avx2\"]}}")
    return facts


@lru_cache(maxsize=1)
def host() -> Host:
    facts = simulated()
    if facts is not None:
        return _simulated_host(facts)
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


def _simulated_host(facts: dict) -> Host:
    try:
        logical = int(facts.get("logical_cores", 1))
        physical = facts.get("physical_cores", logical)
        return Host(cpu_model=str(facts.get("cpu_model", "simulated CPU")), logical_cores=max(1, logical),
                    physical_cores=int(physical) if physical is not None else None,
                    flags=frozenset(str(f) for f in facts.get("flags", ())),
                    memory_gb=float(facts.get("memory_gb", 0.0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{SIMULATED}: a host fact has the wrong type ({exc})",
                          "logical_cores and physical_cores are integers, flags a list of strings")


def node_info() -> dict:
    """The machine a job runs on, as each variant records it: what rankings group by (`hardware_class`).
    A cluster launcher adds its own node id (`node_id`); elsewhere it is None."""
    h = host()
    return {"hostname": socket.gethostname(), "cpu_model": h.cpu_model, "logical_cores": h.logical_cores,
            "physical_cores": h.physical_cores, "memory_gb": h.memory_gb, "accelerator": accelerator(),
            "node_id": None}


def accelerator() -> str | None:
    """The GPU the kernel driver lists (NVIDIA's /proc entries), read without importing a framework."""
    models = []  # a simulated host's are its `gpus` only
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")) if simulated() is None else ():
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                models.append(value.strip())
    if not models:  # no /proc entries (a sandboxed kernel): NVML may still list them
        models = [g.name for g in gpus()]
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


@dataclass(frozen=True)
class GemmPeaks:
    """The attainable GEMM rate per precision measured here (`inferarena peak`; trackers/peak.py, cached per
    machine as JSON): GFLOP/s, GOP/s for int8. On a GPU also its name, CUDA, compute capability and HBM."""

    gflops: dict[str, float]
    threads: int = 0
    torch: str = ""
    measured_at: str = ""
    device: str | None = None  # the GPU's name; None on the CPU
    compute_capability: str | None = None
    cuda: str | None = None
    hbm: dict[str, float] | None = None  # read_gb_per_s, copy_gb_per_s
    not_cached: str | None = None  # why this reading serves this run only (a busy machine)

    @classmethod
    def of(cls, data: dict) -> "GemmPeaks":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class MemoryBandwidth:
    """The memory read and triad bandwidth measured here (trackers/bandwidth.py, or a GPU's HBM), the decode
    roofline's yardstick; kept in the run's environment as `memory_bandwidth_gb_per_s`."""

    read_gb_per_s: float
    triad_gb_per_s: float
    threads: int = 0
    method: str = ""
    measured_at: str = ""
    device: str | None = None
    busy_elsewhere_pct: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def of(cls, data: dict | None) -> "MemoryBandwidth | None":
        """From a stored environment or a cache file; None where none was measured."""
        if not data or not data.get("read_gb_per_s"):
            return None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU as NVML reports it: what the environment card records and what precisions it computes."""

    name: str
    memory_gb: float
    driver: str | None = None
    cuda_version: str | None = None  # the newest CUDA the driver supports (NVML's cuda driver version)
    compute_capability: tuple[int, int] | None = None

    def supports(self, precision: str) -> bool:
        """Native math in this precision: BF16 from Ampere (8.0), FP8 from Ada/Hopper (8.9); the rest always.
        An unknown capability admits everything (the worker's framework has the last word)."""
        need = {"bf16": (8, 0), "fp8": (8, 9)}.get(precision)
        return need is None or self.compute_capability is None or self.compute_capability >= need

    def as_dict(self) -> dict:
        cc = self.compute_capability
        return {"name": self.name, "memory_gb": self.memory_gb, "driver": self.driver, "cuda_version": self.cuda_version,
                "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None}


@lru_cache(maxsize=1)
def gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs NVML lists (none where nvidia-ml-py, the driver or a GPU is missing)."""
    facts = simulated()
    if facts is not None:
        return tuple(Gpu(name=str(g["name"]), memory_gb=float(g.get("memory_gb", 0.0)),
                         compute_capability=tuple(g["compute_capability"]) if g.get("compute_capability") else None)
                     for g in facts.get("gpus", ()))
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no binding, no driver library, or the driver cannot talk to a GPU
        return ()
    found = []
    try:
        driver = _text(_try(pynvml.nvmlSystemGetDriverVersion))
        cuda = _try(pynvml.nvmlSystemGetCudaDriverVersion)
        cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) and cuda else None
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = _try(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total) or 0
            cc = _try(lambda: tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)))
            found.append(Gpu(name=_text(pynvml.nvmlDeviceGetName(handle)) or "NVIDIA GPU",
                             memory_gb=round(memory / 2**30, 1), driver=driver, cuda_version=cuda_version,
                             compute_capability=cc if cc and len(cc) == 2 else None))
    except Exception:
        return tuple(found)
    return tuple(found)


def _try(read):
    try:
        return read()
    except Exception:  # a query this driver or GPU does not answer
        return None


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def resolve_device(requested: str) -> str:
    """The device a run measures on: `cpu`, `cuda` (a GPU must be visible), or `auto` (cuda where a GPU is
    visible, else cpu). A `cuda` run without a GPU is the user's error, said in one line."""
    if requested not in DEVICES:
        raise ConfigError(f"unknown device {requested!r}", f"choose from {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    if gpus():
        return "cuda"
    if requested == "auto":
        return "cpu"
    raise ConfigError("--device cuda, but no CUDA GPU is visible here (NVML lists none: no NVIDIA driver, GPU or "
                      "nvidia-ml-py)", "run on a machine with an NVIDIA GPU and `pip install nvidia-ml-py`, or use "
                      "--device cpu (or auto)")
