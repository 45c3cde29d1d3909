"""Service-level objectives for serve-bench, and what each load point made of them.

An SLO bounds every request: `p99_ms=100` says a request should finish within 100 ms, and that at least
99 % of them must (so a rate meets it exactly when LoadGen's p99 is within 100 ms); `ttft_ms=500,tpot_ms=50`
bounds a streamed LLM request's time to first token and its time per output token, at the same 99 %.
At each load point, **SLO attainment** is the share of the requests sent that met every bound (a failed
request never does), and **goodput** is the rate of those that did (DistServe's and vLLM's definition):
completed requests/s × attainment.

    >>> Slo.parse("p99_ms=100")
    Slo(latency_ms=100.0, percentile=99.0, ttft_ms=None, tpot_ms=None)
    >>> Slo.parse("ttft_ms=500,tpot_ms=50").describe()
    'TTFT ≤ 500 ms and TPOT ≤ 50 ms for 99 % of requests'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inferarena.errors import ConfigError

_FIX = "give --slo as p99_ms=100 (tensor models) or ttft_ms=500,tpot_ms=50 (LLMs), comma-separated"


class Slo(BaseModel):
    """Per-request bounds (ms) and the share of requests that must meet them (percent)."""

    model_config = ConfigDict(extra="forbid")
    latency_ms: float | None = Field(None, gt=0, description="Bound on each request's latency, from send to answer.")
    percentile: float = Field(99.0, gt=0, lt=100, description="Share of requests (%) that must meet every bound.")
    ttft_ms: float | None = Field(None, gt=0, description="Bound on a streamed request's time to first token.")
    tpot_ms: float | None = Field(None, gt=0, description="Bound on a streamed request's time per output token.")

    @model_validator(mode="after")
    def _some_bound(self) -> Slo:
        if self.latency_ms is None and self.ttft_ms is None and self.tpot_ms is None:
            raise ValueError("an SLO needs at least one bound: latency_ms, ttft_ms or tpot_ms")
        return self

    @classmethod
    def parse(cls, text: str) -> Slo:
        """`p99_ms=100`, `p90_ms=40`, `ttft_ms=500,tpot_ms=50` (optionally with `pct=95` for the LLM bounds)."""
        fields: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, sep, value = part.partition("=")
            name = name.strip().lower()
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not sep or not number > 0:
                raise ConfigError(f"--slo {text!r}: {part!r} is not NAME=MILLISECONDS with a positive number", _FIX)
            percentile = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)_ms", name)
            if percentile:
                if "latency_ms" in fields:
                    raise ConfigError(f"--slo {text!r} bounds the latency twice", _FIX)
                fields["latency_ms"], fields["percentile"] = number, float(percentile.group(1))
            elif name in ("ttft_ms", "tpot_ms"):
                fields[name] = number
            elif name == "pct":
                fields["percentile"] = number
            else:
                raise ConfigError(f"--slo {text!r}: unknown bound {name!r}", _FIX)
        if not fields:
            raise ConfigError("--slo is empty", _FIX)
        try:
            return cls(**fields)
        except ValueError as exc:
            raise ConfigError(f"--slo {text!r}: {str(exc).splitlines()[-1].strip()}", _FIX) from None

    def describe(self) -> str:
        bounds = [f"{label} ≤ {value:g} ms" for label, value in
                  (("latency", self.latency_ms), ("TTFT", self.ttft_ms), ("TPOT", self.tpot_ms)) if value is not None]
        return f"{' and '.join(bounds)} for {self.percentile:g} % of requests"

    def short(self) -> str:
        """As the command line takes it: p99_ms=100, ttft_ms=500,tpot_ms=50."""
        parts = [f"p{self.percentile:g}_ms={self.latency_ms:g}"] if self.latency_ms is not None else []
        parts += [f"{name}={value:g}" for name, value in (("ttft_ms", self.ttft_ms), ("tpot_ms", self.tpot_ms))
                  if value is not None]
        if self.latency_ms is None and self.percentile != 99.0:
            parts.append(f"pct={self.percentile:g}")
        return ",".join(parts)

    def met(self, timing: RequestTiming) -> bool:
        """Whether one request met every bound; a failed request never does."""
        if timing.latency_ms is None:
            return False
        return all(value is None or (got is not None and got <= value) for value, got in (
            (self.latency_ms, timing.latency_ms), (self.ttft_ms, timing.ttft_ms), (self.tpot_ms, timing.tpot_ms)))


@dataclass(frozen=True)
class RequestTiming:
    """One request as the client saw it: latency from send (or from LoadGen's issue, when it queued in the
    client) to the last byte; None when it failed. TTFT and TPOT for streamed requests."""

    latency_ms: float | None
    ttft_ms: float | None = None
    tpot_ms: float | None = None


def attainment_pct(timings: list[RequestTiming], slo: Slo) -> float | None:
    """The share of requests (%) that met every bound, failed ones counted as missed; None without requests."""
    if not timings:
        return None
    return 100.0 * sum(slo.met(t) for t in timings) / len(timings)
