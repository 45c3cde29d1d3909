"""Which server configuration to use for a model, from the newest serve-bench run of it in the store.

`recommend` names it beside its pick, and `deploy` writes its batching into the bundle for that server:

    choice = latest(store, "minilm", server="triton")
    choice.sentence()   # 'triton, max batch 8 within 2 ms: 412 QPS within latency ≤ 100 ms ... (serve-bench run 5)'

The best configuration is the highest peak within the SLO, preferring peaks that held when probed again,
as serve-bench's own "Best on" line says.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferarena.serving.records import ServedInfo


@dataclass(frozen=True)
class ServingChoice:
    run_id: int
    server: str
    transport: str
    max_batch_size: int
    max_delay_ms: float
    instances: int
    peak_qps: float
    latency_ms_p99: float | None
    slo: str
    confirmed: bool | None
    usd_per_1m_requests: float | None = None
    price_estimated: bool | None = None
    served: str = ""  # what was served: the model's FP32 ONNX export, or a pipeline's output

    def batching(self) -> str:
        if self.max_batch_size <= 1:
            return "no batching"
        return f"max batch {self.max_batch_size} within {self.max_delay_ms:g} ms"

    def sentence(self) -> str:
        cost = ""
        if self.usd_per_1m_requests is not None:
            cost = f", ${self.usd_per_1m_requests:.3g} per 1M requests" + (
                " (estimated price)" if self.price_estimated else "")
        held = "" if self.confirmed is not False else ", not confirmed on repetition"
        return (f"{self.server}{' over gRPC' if self.transport == 'grpc' else ''}, {self.batching()}"
                + (f", {self.instances} instances" if self.instances > 1 else "")
                + f": {self.peak_qps:.4g} QPS within {self.slo}{held}{cost} (serve-bench run {self.run_id}"
                + (f", serving {self.served}" if self.served else "") + ")")


def latest(store, model: str, server: str | None = None, newest: int = 200) -> ServingChoice | None:
    """The best configuration of the newest finished serve-bench run of `model` (on `server` only, if given)."""
    for row in store.runs(limit=newest):
        if row["model"] != model or row["status"] != "complete":
            continue
        run = store.load_run(row["run_id"])
        if run is None or run.config.get("kind") != "serve-bench":
            continue
        found = best(run, server)
        if found is not None:
            return found
    return None


def best(run, server: str | None = None) -> ServingChoice | None:
    candidates = []
    for v in run.variants:
        info = ServedInfo.of(v.session_info)
        metrics = v.scenarios["server"].metrics if v.ok and "server" in v.scenarios else {}
        peak = metrics.get("peak_qps_at_slo")
        if not peak or (server is not None and v.runtime != server) or "max_batch_size" not in (v.knobs or {}):
            continue
        candidates.append(((info.peak_confirmed is not False, peak), ServingChoice(
            run_id=run.run_id, server=v.runtime, transport="grpc" if v.name.endswith("-grpc") else "http",
            max_batch_size=int(v.knobs.get("max_batch_size", 1)), max_delay_ms=float(v.knobs.get("max_delay_ms", 0.0)),
            instances=int(v.knobs.get("instances", 1)), peak_qps=peak, latency_ms_p99=metrics.get("latency_ms_p99"),
            slo=info.slo or f"p99 ≤ {run.config.get('slo', {}).get('latency_ms', '?')} ms",
            confirmed=info.peak_confirmed, usd_per_1m_requests=info.at_slo.usd_per_1m_requests if info.at_slo else None,
            price_estimated=info.at_slo.price_estimated if info.at_slo else None,
            served=f"the {run.config['pipeline']} pipeline's output" if run.config.get("pipeline") else
            "the FP32 ONNX export")))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None
