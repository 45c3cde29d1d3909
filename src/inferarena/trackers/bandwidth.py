"""The decode roofline: memory bandwidth measured with a STREAM-like triad, and bytes read per token.

Decoding one token reads every weight once plus the KV cache of the tokens so far, and does little
arithmetic per byte, so tokens/s × bytes/token ÷ bandwidth is how close a runtime gets to what the
memory allows. The triad `a = b + s·c` runs in one fused torch call over arrays far larger than any
cache (3 × 8 bytes moved per element, as STREAM counts it), best of several repeats, on the run's
threads. Cached per machine, like the GEMM peaks.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from inferarena.hardware import Host

ELEMENTS = 32 * 2**20  # 256 MiB per float64 array, 768 MiB touched per pass


def load_or_measure(cache_dir: Path, host: Host, threads: int, refresh: bool = False) -> dict:
    key = json.dumps([host.cpu_model, host.logical_cores, sorted(host.flags), threads, ELEMENTS])
    path = cache_dir / "bandwidth" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    result = {"triad_gb_per_s": triad_gb_per_s(threads), "threads": threads, "elements": ELEMENTS,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "method": "STREAM-like triad (torch)"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def triad_gb_per_s(threads: int, repeats: int = 6) -> float:
    import torch

    torch.set_num_threads(threads)
    b = torch.rand(ELEMENTS, dtype=torch.float64)
    c = torch.rand(ELEMENTS, dtype=torch.float64)
    a = torch.empty_like(b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        best = min(best, time.perf_counter() - start)
    return 3 * 8 * ELEMENTS / best / 1e9


def kv_bytes_per_token(meta: dict, bytes_per_value: int = 2) -> int:
    """KV cache bytes one token of context adds: keys and values, every layer and KV head."""
    return 2 * meta["layers"] * meta["kv_heads"] * meta["head_dim"] * bytes_per_value


def roofline(decode_tokens_per_s: float, weight_bytes: int, kv_per_token: int, mean_context: float,
             bandwidth_gb_per_s: float) -> dict[str, float]:
    """Bytes per decoded token (weights + the KV cache read at the mean context) and % of the triad bandwidth."""
    per_token = weight_bytes + kv_per_token * mean_context
    achieved = decode_tokens_per_s * per_token / 1e9
    return {"bytes_per_token_mb": per_token / 1e6, "achieved_gb_per_s": achieved,
            "pct_of_bandwidth": 100.0 * achieved / bandwidth_gb_per_s if bandwidth_gb_per_s else None}
