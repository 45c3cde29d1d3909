"""serve-bench's typed results: a load point, a server configuration's entry with every point, and the
whole benchmark. The JSON document and the store are written from these, never from reshaped dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal


def _known(cls, data: dict[str, Any]) -> dict[str, Any]:
    """The stored dict's fields that `cls` has (a row written by an older or newer version may differ)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class LoadPoint:
    """One point of a load curve: a Poisson rate (open loop, LoadGen) or a number of requests kept in flight
    (closed loop), with what it achieved. Latencies are of the requests that answered."""

    mode: Literal["rate", "concurrency"]
    offered: float  # requests/s asked for (rate), or requests in flight (concurrency)
    requests: int  # sent, failed ones included
    completed_qps: float | None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_p99: float | None = None
    slo_attainment_pct: float | None = None  # requests that met every SLO bound, of those sent
    goodput_qps: float | None = None  # completed requests/s that met every bound
    meets_slo: bool = False  # rate: LoadGen's percentile within the bound, no error; concurrency: attainment
    errors: int = 0
    avg_batch_size: float | None = None
    ttft_ms_p99: float | None = None
    tpot_ms_p99: float | None = None
    energy_j_per_request: float | None = None
    energy_source: str | None = None  # rapl (measured) or estimate
    repeat: bool = False  # a confirmation of an earlier probe at the same rate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any]) -> "LoadPoint":
        return cls(**_known(cls, data))


@dataclass
class AtSlo:
    """What serving costs at the highest offered rate whose point met the SLO."""

    rate_qps: float  # the offered Poisson rate
    goodput_qps: float  # requests/s that met every bound there
    usd_per_1m_requests: float | None  # the host's price per hour over the goodput
    price_basis: str | None  # where that price came from (config, a named instance, or the default estimate)
    price_estimated: bool  # True when the price is the built-in guess for a host like this one
    energy_j_per_request: float | None
    energy_basis: str | None  # "measured: ..." (RAPL) or "estimate: ..." (the server's CPU time x W per thread)

    @classmethod
    def of(cls, data: dict[str, Any]) -> "AtSlo":
        known = _known(cls, data)
        return cls(**{f.name: known.get(f.name) for f in fields(cls)})


@dataclass
class ServedInfo:
    """What a stored serve-bench variant keeps in its session info (`save` writes it, the report's curves and
    `serving.choice` read it back): every load point, the SLO in words, whether the peak held when probed
    again, and what serving cost at the SLO."""

    points: list[LoadPoint] = field(default_factory=list)
    slo: str | None = None
    peak_confirmed: bool | None = None
    at_slo: AtSlo | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, info: dict[str, Any] | None) -> "ServedInfo":
        """From a variant's session info; any other variant's reads as empty."""
        info = info or {}
        return cls([LoadPoint.of(p) for p in info.get("points") or []], info.get("slo"), info.get("peak_confirmed"),
                   AtSlo.of(info["at_slo"]) if info.get("at_slo") else None)


@dataclass
class ServerEntry:
    """One server configuration (or a remote endpoint): its status, its peak within the SLO, and every
    measured point (the peak search's probes, the asked-for rates and the closed-loop levels)."""

    server: str
    config: dict[str, Any]
    label: str
    status: str  # ok, failed, or why no rate met the SLO
    transport: str = "http"
    protocol: str | None = None
    target: str | None = None
    error: str | None = None
    log: str | None = None
    peak_qps_at_slo: float | None = None
    peak_confirmed: bool | None = None  # the peak held when probed again (None: not repeated)
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_p99: float | None = None
    latency_ms_p99_repeat: float | None = None
    completed_qps: float | None = None
    avg_batch_size: float | None = None
    server_reported_avg_batch_size: float | None = None
    client_cpu_ms_per_query: float | None = None
    errors: float | None = None
    ready_s: float | None = None
    single_request_ms: float | None = None
    ttft_ms_p99: float | None = None
    tpot_ms_p99: float | None = None
    tokens_per_s: float | None = None
    tokens_per_request: float | None = None
    slo_attainment_pct: float | None = None  # at the peak
    goodput_qps: float | None = None  # at the peak
    models: dict[str, dict[str, float | None]] | None = None  # per served model, when two share the server
    points: list[LoadPoint] = field(default_factory=list)
    at_slo: AtSlo | None = None
    best: dict[str, Any] = field(default_factory=dict, repr=False)  # the peak probe's figures, for the store

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """As the JSON document writes it (without `best`, which the store keeps)."""
        out = asdict(self)
        out.pop("best")
        return out


@dataclass
class ServeBenchResult:
    model: str
    kind: str
    device: str
    servers: list[ServerEntry]
    notes: list[str]
    workload: dict[str, Any]
    slo: str  # the SLO in words
    efficiency: dict[str, float | None] = field(default_factory=dict)  # batched peak over unbatched, per server
    sla_p99_ms: float | None = None  # tensor models
    ttft_ms_p99: float | None = None  # generative models
    tpot_ms_p99: float | None = None
    generative: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "servers"},
                "servers": [e.as_dict() for e in self.servers]}
