"""The machine's attainable GEMM peak per precision, measured with a short torch microbenchmark.

"Attainable" means the best of a few square sizes, all threads: the roof a model's matmuls could
reach here. Cached per machine (CPU model, cores, ISA flags, torch version) because it takes seconds.

On a GPU (`device="cuda"`) the same idea with larger sizes: FP32 (TF32 off), BF16 and FP16 through
`torch.mm`, INT8 through `torch._int_mm`, FP8 (e4m3, compute capability 8.9 and newer) through
`torch._scaled_mm`, each timed between `torch.cuda.synchronize()` calls; plus the HBM bandwidth, a
read (`sum` over a large buffer) and a device-to-device copy (bytes read plus written). Cached per GPU
model, driver and torch version. Written without a GPU to run it on: see docs/guide.md, "GPUs".
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from inferarena.errors import ConfigError
from inferarena.hardware import Host
from inferarena.trackers.cpu import BusyElsewhere

SIZES = (512, 1024, 2048)
# What each precision's matmuls run as; INT8 through torch._int_mm (int8 x int8 -> int32). FP16 only where
# the CPU computes it natively (AVX512-FP16 or AMX-FP16): elsewhere torch emulates it, which is no roof.
PRECISIONS = ("fp32", "bf16", "int8")


def precisions(host: Host) -> tuple[str, ...]:
    return PRECISIONS + (("fp16",) if host.has_fp16 else ())
GPU_SIZES = (4096, 8192)
GPU_PRECISIONS = ("fp32", "bf16", "fp16", "int8", "fp8")
HBM_BYTES = 2 * 2**30  # per buffer: far beyond any L2
GPU_METHOD = ("GEMM: best of square sizes 4096 and 8192; fp32 with TF32 off; fp8 e4m3 via torch._scaled_mm. HBM: "
              "read = torch.sum over 2 GiB, copy = a 2 GiB device-to-device copy counting bytes read plus written")


def cache_file(cache_dir: Path, host: Host, torch_version: str) -> Path:
    key = json.dumps([host.cpu_model, host.logical_cores, sorted(host.flags), torch_version, precisions(host)])
    return cache_dir / "peaks" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def measure(threads: int, seconds: float = 0.3, which: tuple[str, ...] = PRECISIONS) -> dict[str, float]:
    """GFLOP/s (GOP/s for int8) per precision; a precision torch cannot run here is left out."""
    import torch

    torch.set_num_threads(threads)
    peaks: dict[str, float] = {}
    for precision in which:
        best = 0.0
        for n in SIZES:
            try:
                rate, first_s = _rate(torch, precision, n, seconds)
            except RuntimeError:  # e.g. no int8 GEMM kernel on this CPU/build
                continue
            best = max(best, rate)
            if first_s > seconds:  # one product takes longer than the whole timing: a larger one only takes longer
                break
        if best:
            peaks[precision] = round(best, 1)
    return peaks


def _rate(torch, precision: str, n: int, seconds: float) -> tuple[float, float]:
    """GFLOP/s of `precision` products of size n over `seconds`, and how long the first one took."""
    if precision == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        op = torch._int_mm
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        op = torch.mm
    start = time.perf_counter()
    op(a, b)  # warm-up
    first_s = time.perf_counter() - start
    iterations, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        op(a, b)
        iterations += 1
    return 2.0 * n**3 * iterations / elapsed / 1e9, first_s


def load_or_measure(cache_dir: Path, host: Host, threads: int, refresh: bool = False, device: str = "cpu") -> dict:
    """{"gflops": {...}, "torch": version, "measured_at": ...}; measures only when not cached. On cuda also
    {"device": GPU name, "hbm": {"read_gb_per_s", "copy_gb_per_s"}}."""
    import torch

    if device != "cpu":
        return _load_or_measure_gpu(torch, cache_dir, refresh)
    path = cache_file(cache_dir, host, torch.__version__)
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    with BusyElsewhere() as others:
        gflops = measure(threads, which=precisions(host))
    result = {
        "gflops": gflops,
        "threads": threads,
        "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "busy_elsewhere_pct": round(others.pct, 1),
    }
    if others.quiet:  # a figure read on a busy machine serves this run only (trackers/cpu.py)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    else:
        result["not_cached"] = f"other processes kept {others.pct:.0f} % of the CPU busy while it measured"
    return result


def gpu_bandwidth(peaks: dict) -> dict:
    """The GPU's HBM figures in the shape the decode roofline reads (`read_gb_per_s`, `triad_gb_per_s`)."""
    hbm = peaks["hbm"]
    return {"read_gb_per_s": hbm["read_gb_per_s"], "triad_gb_per_s": hbm["copy_gb_per_s"], "threads": 0,
            "method": GPU_METHOD, "device": peaks.get("device"), "measured_at": peaks.get("measured_at")}


def _load_or_measure_gpu(torch, cache_dir: Path, refresh: bool) -> dict:
    if not torch.cuda.is_available():
        raise ConfigError(f"torch {torch.__version__} sees no CUDA GPU, so no GPU peak can be measured",
                          "install a CUDA build of torch on a machine with an NVIDIA GPU, or use --device cpu")
    props = torch.cuda.get_device_properties(0)
    capability = torch.cuda.get_device_capability(0)
    key = json.dumps([props.name, props.total_memory, capability, torch.__version__, torch.version.cuda, GPU_METHOD])
    path = cache_dir / "peaks" / f"gpu-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    result = {
        "gflops": measure_gpu(torch, capability),
        "hbm": measure_hbm(torch),
        "device": props.name,
        "compute_capability": f"{capability[0]}.{capability[1]}",
        "threads": 0,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "method": GPU_METHOD,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def measure_gpu(torch, capability: tuple[int, int], seconds: float = 0.2) -> dict[str, float]:
    """GFLOP/s (GOP/s for int8) per precision on GPU 0; a precision this GPU or build cannot run is left out."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: TF32 is a knob, not the fp32 roof
    peaks: dict[str, float] = {}
    try:
        for precision in GPU_PRECISIONS:
            if precision == "fp8" and tuple(capability) < (8, 9):
                continue
            best = 0.0
            for n in GPU_SIZES:
                try:
                    best = max(best, _gpu_rate(torch, precision, n, seconds))
                except (RuntimeError, TypeError):  # no kernel for this type here
                    continue
                finally:
                    torch.cuda.empty_cache()
            if best:
                peaks[precision] = round(best, 1)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return peaks


def _gpu_rate(torch, precision: str, n: int, seconds: float) -> float:
    dev = "cuda"
    if precision == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)

        def op():
            return torch._int_mm(a, b)
    elif precision == "fp8":
        a = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()  # the second operand column-major
        one = torch.tensor(1.0, device=dev)

        def op():
            return torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16)
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)

        def op():
            return torch.mm(a, b)
    for _ in range(3):  # warm-up: kernel selection, clocks up
        op()
    torch.cuda.synchronize()
    iterations, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            op()
        iterations += 10
        torch.cuda.synchronize()
        if (elapsed := time.perf_counter() - start) >= seconds:
            break
    return 2.0 * n**3 * iterations / elapsed / 1e9


def measure_hbm(torch, repeats: int = 10) -> dict[str, float]:
    """HBM bandwidth (GB/s): a read (`sum` over HBM_BYTES of bf16) and a copy (bytes read plus written)."""

    def best(fn) -> float:
        fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return min(times)

    def measure() -> tuple[float, float]:  # the buffers are freed when it returns
        src = torch.empty(HBM_BYTES // 2, dtype=torch.bfloat16, device="cuda").normal_()
        dst = torch.empty_like(src)
        return (HBM_BYTES / best(lambda: src.sum(dtype=torch.float32)) / 1e9,
                2 * HBM_BYTES / best(lambda: dst.copy_(src)) / 1e9)

    read, copy = measure()
    torch.cuda.empty_cache()
    return {"read_gb_per_s": round(read, 1), "copy_gb_per_s": round(copy, 1)}
