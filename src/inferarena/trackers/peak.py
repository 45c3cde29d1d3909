"""The machine's attainable GEMM peak per precision, measured with a short torch microbenchmark.

"Attainable" means the best of a few square sizes, all threads: the roof a model's matmuls could
reach here. Cached per machine (CPU model, cores, ISA flags, torch version) because it takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from inferarena.hardware import Host

SIZES = (512, 1024, 2048)
# What each precision's matmuls run as; INT8 through torch._int_mm (int8 x int8 -> int32).
PRECISIONS = ("fp32", "bf16", "int8")


def cache_file(cache_dir: Path, host: Host, torch_version: str) -> Path:
    key = json.dumps([host.cpu_model, host.logical_cores, sorted(host.flags), torch_version])
    return cache_dir / "peaks" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def measure(threads: int, seconds: float = 0.3) -> dict[str, float]:
    """GFLOP/s (GOP/s for int8) per precision; a precision torch cannot run here is left out."""
    import torch

    torch.set_num_threads(threads)
    peaks: dict[str, float] = {}
    for precision in PRECISIONS:
        best = 0.0
        for n in SIZES:
            try:
                best = max(best, _rate(torch, precision, n, seconds))
            except RuntimeError:  # e.g. no int8 GEMM kernel on this CPU/build
                continue
        if best:
            peaks[precision] = round(best, 1)
    return peaks


def _rate(torch, precision: str, n: int, seconds: float) -> float:
    if precision == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        op = torch._int_mm
    else:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        op = torch.mm
    op(a, b)  # warm-up
    iterations, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        op(a, b)
        iterations += 1
    return 2.0 * n**3 * iterations / elapsed / 1e9


def load_or_measure(cache_dir: Path, host: Host, threads: int, refresh: bool = False) -> dict:
    """{"gflops": {...}, "torch": version, "measured_at": ...}; measures only when not cached."""
    import torch

    path = cache_file(cache_dir, host, torch.__version__)
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    result = {
        "gflops": measure(threads),
        "threads": threads,
        "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result
