from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LatencyStats:
    """Latency percentiles in milliseconds, as LoadGen computed them."""

    latency_ms_mean: float
    latency_ms_p50: float
    latency_ms_p90: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_p99_9: float
    latency_ms_max: float

    @classmethod
    def from_loadgen(cls, log: dict, per_query: bool = False) -> "LatencyStats | None":
        """Read LoadGen's `result_*_latency_ns` keys (MultiStream's per-query keys when asked)."""
        kind = "per_query_latency_ns" if per_query else "latency_ns"
        extreme = "query_latency_ns" if per_query else "latency_ns"  # LoadGen's key for mean and max

        def ms(key: str) -> float | None:
            value = log.get(key)
            return None if value is None else float(value) / 1e6

        p = {q: ms(f"result_{q}_percentile_{kind}") for q in ("50.00", "90.00", "95.00", "99.00", "99.90")}
        if p["50.00"] is None:
            return None
        return cls(
            latency_ms_mean=ms(f"result_mean_{extreme}") or float("nan"),
            latency_ms_p50=p["50.00"],
            latency_ms_p90=p["90.00"],
            latency_ms_p95=p["95.00"],
            latency_ms_p99=p["99.00"],
            latency_ms_p99_9=p["99.90"],
            latency_ms_max=ms(f"result_max_{extreme}") or float("nan"),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
