"""The decode roofline: memory bandwidth measured on this machine, and bytes read per token.

Decoding one token reads every weight once plus the KV cache of the tokens so far, and does little
arithmetic per byte, so tokens/s × bytes/token ÷ bandwidth is how close a runtime gets to what the
memory allows. Decode reads and hardly writes, so the roofline uses the read bandwidth: one torch
reduction over an array far larger than any cache, best of several repeats, on the run's threads.
A STREAM-like triad (`a = b + s·c`, 3 × 8 bytes per element as STREAM counts them) is measured too
and stored beside it. On a shared VM either can land 30-40% apart from one measurement to the next.
Cached per machine, like the GEMM peaks, unless other processes kept the CPU busy while it was measured.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from inferarena.hardware import Host
from inferarena.trackers.cpu import BusyElsewhere

ELEMENTS = 32 * 2**20  # 256 MiB per float64 array
METHOD = "read: torch.sum over 256 MiB; triad: a = b + s·c over 3 × 256 MiB"


def load_or_measure(cache_dir: Path, host: Host, threads: int, refresh: bool = False) -> dict:
    key = json.dumps([host.cpu_model, host.logical_cores, sorted(host.flags), threads, ELEMENTS, METHOD])
    path = cache_dir / "bandwidth" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    with BusyElsewhere() as others:
        read, triad = measure(threads)
    result = {"read_gb_per_s": read, "triad_gb_per_s": triad, "threads": threads, "method": METHOD,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "busy_elsewhere_pct": round(others.pct, 1)}
    if others.quiet:  # a figure read on a busy machine serves this run only (trackers/cpu.py)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    return result


def measure(threads: int, repeats: int = 6) -> tuple[float, float]:
    """(read GB/s, triad GB/s), each the best of `repeats`."""
    import torch

    torch.set_num_threads(threads)
    b = torch.rand(ELEMENTS, dtype=torch.float64)
    c = torch.rand(ELEMENTS, dtype=torch.float64)
    a = torch.empty_like(b)

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    read = 8 * ELEMENTS / best(lambda: b.sum()) / 1e9
    triad = 3 * 8 * ELEMENTS / best(lambda: torch.add(b, c, alpha=3.0, out=a)) / 1e9
    return read, triad


def kv_bytes_per_token(meta: dict, bytes_per_value: int = 2) -> int:
    """KV cache bytes one token of context adds: keys and values, every layer and KV head."""
    return 2 * meta["layers"] * meta["kv_heads"] * meta["head_dim"] * bytes_per_value


def roofline(decode_tokens_per_s: float, weight_bytes: int, kv_per_token: int, mean_context: float,
             bandwidth_gb_per_s: float) -> dict[str, float]:
    """Bytes per decoded token (weights + the KV cache read at the mean context) and % of the read bandwidth."""
    per_token = weight_bytes + kv_per_token * mean_context
    achieved = decode_tokens_per_s * per_token / 1e9
    return {"bytes_per_token_mb": per_token / 1e6, "achieved_gb_per_s": achieved,
            "pct_of_bandwidth": 100.0 * achieved / bandwidth_gb_per_s if bandwidth_gb_per_s else None}
