"""serve-bench: the peak-QPS search, server processes that leave nothing behind, clients, and the real
servers (MLServer, TorchServe, Triton) started on loopback in the environments inferarena manages."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import numpy as np
import pytest
from conftest import json_server
from test_cli import invoke

from inferarena.serving.load import Probe, peak_qps
from inferarena.serving.process import ServerFailed, ServerProcess, free_port


def test_peak_search_brackets_the_capacity():
    """Doubling then bisecting lands within 10% below the true capacity, never above it."""
    seen = []

    def probe(qps):
        seen.append(qps)
        return Probe(qps, qps <= 37.0, {"latency_ms_p99": 10.0})

    search = peak_qps(probe, start_qps=3.0, max_probes=12)
    assert 37.0 / 1.1 <= search.peak_qps <= 37.0
    assert seen[:4] == [3.0, 6.0, 12.0, 24.0]  # doubles while it passes
    nothing = peak_qps(lambda q: Probe(q, False, {}), start_qps=4.0, max_probes=5)
    assert nothing.peak_qps is None and [p.target_qps for p in nothing.probes] == [4.0, 2.0, 1.0, 0.5]  # gives up


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting to be reaped is gone for our purposes
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_server_process_stops_its_whole_group(tmp_path):
    """A server that spawns a child (as MLServer and TorchServe do) is stopped with it, and one that
    dies while starting is reported with its log's error line."""
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent("""
        import http.server, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind="127.0.0.1")
    """))
    port = free_port()
    server = ServerProcess("fake", [sys.executable, str(script), str(port)], tmp_path / "server.log", tmp_path)
    with server:
        server.wait_ready([f"http://127.0.0.1:{port}/"], timeout_s=30)
        child = int(next(line.split()[1] for line in server.log.read_text().splitlines() if line.startswith("child")))
        assert _alive(child)
    assert not _alive(server.pid) and not _alive(child)

    dying = ServerProcess("broken", [sys.executable, "-c", "raise RuntimeError('no model here')"],
                          tmp_path / "broken.log", tmp_path)
    with dying, pytest.raises(ServerFailed, match="broken exited with code 1 while starting: RuntimeError: no model"):
        dying.wait_ready([f"http://127.0.0.1:{free_port()}/"], timeout_s=30)


def _kserve(path: str, body: dict) -> dict:
    """A minimal KServe v2 endpoint (y = 2x) standing in for a remote server nobody runs here."""
    if path.startswith("/v1/models/double:predict"):  # TF Serving REST, as documented
        x = np.asarray(body["inputs"]["x"], dtype=np.float32)
        return {"outputs": (2 * x).tolist()}
    tensor = body["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32)
    return {"model_name": "double", "outputs": [{"name": "y", "shape": tensor["shape"], "datatype": "FP32",
                                                 "data": (2 * x).tolist()}]}


@pytest.fixture
def remote_endpoint():
    with json_server(_kserve) as url:
        yield url


def test_remote_mode(tmp_path, mlp_onnx, remote_endpoint):
    """--target benchmarks a running endpoint over KServe v2 and over TF Serving's REST API (the latter
    written from its documentation; no TF Serving can be installed here)."""
    for protocol in ("kserve-v2", "tfserving-rest"):
        out = tmp_path / f"{protocol}.json"
        result = invoke("serve-bench", "--model", mlp_onnx, "--target", remote_endpoint, "--protocol", protocol,
                        "--target-model", "double", "--probe-ms", "300", "--json", out, "--db", tmp_path / "r.db",
                        "--cache-dir", tmp_path / "cache")
        assert result.exit_code == 0, result.output
        entry = json.loads(out.read_text())["servers"][0]
        assert entry["server"] == "remote" and entry["status"] == "ok" and entry["peak_qps_at_slo"] > 0
        assert entry["client_cpu_ms_per_query"] > 0  # the client's own cost is reported
    assert "peak QPS" in result.output
    # Stored like any run: `show` and the HTML report read it back.
    shown = invoke("show", "2", "--db", tmp_path / "r.db")
    assert shown.exit_code == 0 and "remote/remote" in shown.output, shown.output
    report = invoke("report", "2", "--db", tmp_path / "r.db", "--output", tmp_path / "serve.html")
    assert report.exit_code == 0 and (tmp_path / "serve.html").is_file(), report.output


def test_quick_serve_bench_on_a_remote_endpoint(tmp_path, mlp_onnx, remote_endpoint):
    """`--quick` exists on serve-bench as on run and search: short probes, fewer of them, and it says so."""
    out = tmp_path / "quick.json"
    result = invoke("serve-bench", "--quick", "--model", mlp_onnx, "--target", remote_endpoint, "--protocol",
                    "kserve-v2", "--target-model", "double", "--json", out, "--db", tmp_path / "r.db",
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["servers"][0]["status"] == "ok"
    assert document["notes"][0].startswith("quick: 1000 ms probes, at most 5 per configuration")
    probes = document["servers"][0]["points"]
    # The search's 5 probes, plus the repeat of the peak; when that repeat fails on a noisy machine, the
    # next lower passing rate is repeated once more (peak_qps(repeats=1): at most 2 repetitions).
    assert len([p for p in probes if not p["repeat"]]) <= 5
    assert len([p for p in probes if p["repeat"]]) <= 2


@pytest.mark.slow
def test_real_servers_sweep(tmp_path, mlp_onnx):
    """MLServer, TorchServe and Triton (pytriton) each serve an ONNX model with and without dynamic
    batching: peak QPS within the SLA, the batches they formed, and no server process left behind."""
    out = tmp_path / "bench.json"
    result = invoke("serve-bench", "--model", mlp_onnx, "--max-batch", "1,8", "--max-delay-ms", "2",
                    "--probe-ms", "500", "--slo", "p99_ms=200", "--json", out, "--db", tmp_path / "r.db",
                    "--cache-dir", tmp_path / "cache")
    doc = json.loads(out.read_text())
    by = {(e["server"], e["config"]["max_batch_size"]): e for e in doc["servers"]}
    for server in ("mlserver", "torchserve", "triton"):
        for batch in (1, 8):
            entry = by[(server, batch)]
            assert entry["status"] == "ok", (server, batch, entry.get("error"), result.output)
            assert entry["peak_qps_at_slo"] > 0 and entry["latency_ms_p99"] <= 200
            assert entry["avg_batch_size"] >= 1.0
        assert by[(server, 1)]["avg_batch_size"] == 1.0
    # Triton's own statistics agree with what our model code saw it form.
    triton = by[("triton", 8)]
    assert triton["server_reported_avg_batch_size"] == pytest.approx(triton["avg_batch_size"], rel=0.05)
    assert result.exit_code == 0
    assert "Best on triton" in result.output
    leftovers = os.popen("ps -eo cmd").read()
    for marker in ("mlserver start", "org.pytorch.serve.ModelServer", "tritonserver", "triton_serve"):
        assert marker not in leftovers


@pytest.mark.slow
def test_grpc_load_on_triton_and_mlserver(tmp_path, mlp_onnx):
    """The same LoadGen Server load over KServe v2 gRPC (our own stubs, grpcio only): answers checked
    against local ONNX Runtime, peak QPS found, batches formed; TorchServe is HTTP only, and says so."""
    out = tmp_path / "grpc.json"
    result = invoke("serve-bench", "--model", mlp_onnx, "--servers", "triton,mlserver,torchserve", "--transport",
                    "grpc", "--max-batch", "8", "--probe-ms", "500", "--slo", "p99_ms=200", "--json", out,
                    "--db", tmp_path / "r.db", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    by = {e["server"]: e for e in doc["servers"]}
    assert set(by) == {"triton", "mlserver"}
    for server, entry in by.items():
        assert entry["transport"] == "grpc" and entry["status"] == "ok", (server, entry.get("error"))
        assert entry["peak_qps_at_slo"] > 0 and entry["avg_batch_size"] >= 1.0
        assert entry["client_cpu_ms_per_query"] > 0
    assert any("torchserve: no gRPC load" in n for n in doc["notes"])
    assert "over gRPC" in result.output


def test_kserve_grpc_messages_round_trip():
    from inferarena.serving.kserve_grpc import decode_response, encode_request, messages

    request, response = messages()
    sent = request.FromString(encode_request("m", {"input_ids": np.array([[1, 2, 3]], np.int64)}))
    assert sent.model_name == "m" and list(sent.inputs[0].shape) == [1, 3]
    assert list(sent.inputs[0].contents.int64_contents) == [1, 2, 3]
    # An FP16 input has no typed field: then every input goes raw, since raw contents are matched by index.
    mixed = request.FromString(encode_request("m", {"ids": np.array([[1, 2]], np.int64),
                                                   "x": np.array([[0.5]], np.float16)}))
    assert len(mixed.raw_input_contents) == 2 and not mixed.inputs[0].contents.int64_contents
    assert np.frombuffer(mixed.raw_input_contents[1], np.float16)[0] == 0.5
    raw = response(model_name="m")
    raw.outputs.add(name="y", datatype="FP32", shape=[1, 2])
    raw.raw_output_contents.append(np.array([[1.5, 2.5]], np.float32).tobytes())  # Triton answers in raw bytes
    typed = response(model_name="m")
    typed.outputs.add(name="y", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1.5, 2.5])  # MLServer
    for answer in (raw, typed):
        np.testing.assert_array_equal(decode_response(answer.SerializeToString())["y"], [[1.5, 2.5]])


@pytest.mark.slow
def test_two_models_on_one_server(tmp_path, mlp_onnx):
    """Multi-model consolidation: the model and its INT8 variant on one Triton and one TorchServe,
    under a mixed load, each with its own p99."""
    out = tmp_path / "multi.json"
    result = invoke("serve-bench", "--model", mlp_onnx, "--servers", "triton,torchserve", "--max-batch", "8",
                    "--multi-model", "int8-dynamic", "--probe-ms", "500", "--slo", "p99_ms=200", "--json", out,
                    "--db", tmp_path / "r.db", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    for entry in json.loads(out.read_text())["servers"]:
        assert entry["status"] == "ok", (entry["server"], entry.get("error"))
        assert set(entry["models"]) == {"model", "int8_dynamic"}
        for figures in entry["models"].values():
            assert figures["queries"] > 0 and figures["latency_ms_p99"] > 0
    assert "two models at" in result.output


def test_the_peak_is_probed_again_and_a_lucky_pass_gives_way():
    """A rate that passed once but fails its repetition is not reported: the next lower passing rate is
    repeated instead, and the entry says whether the peak held."""
    calls = {}

    def probe(qps):
        calls[qps] = calls.get(qps, 0) + 1
        lucky = qps == 30.0 and calls[qps] == 1  # 30 passes the first time only
        return Probe(qps, qps <= 20.0 or lucky, {"latency_ms_p99": 10.0})

    search = peak_qps(probe, start_qps=5.0, max_probes=5)  # 5, 10, 20, 40 (fails), 30 (lucky)
    assert search.peak_qps == 20.0 and search.confirmed is True and search.repeat.repeat
    assert [p.target_qps for p in search.probes if p.repeat] == [30.0, 20.0]
    steady = peak_qps(lambda q: Probe(q, q <= 20.0, {}), start_qps=5.0, max_probes=5)
    assert steady.confirmed is True and len([p for p in steady.probes if p.repeat]) == 1


def test_best_per_server_prefers_a_confirmed_peak():
    from inferarena.serving.bench import best_per_server, efficiency
    from inferarena.serving.records import ServerEntry

    def entry(batch, qps, confirmed):
        return ServerEntry("mlserver", {"max_batch_size": batch}, f"b{batch}", "ok", peak_qps_at_slo=qps,
                           peak_confirmed=confirmed)

    entries = [entry(1, 11.0, True), entry(8, 21.7, False), entry(8, 15.0, True)]
    assert best_per_server(entries)["mlserver"].peak_qps_at_slo == 15.0
    assert efficiency(entries)["mlserver"] == round(15.0 / 11.0, 3)  # the unconfirmed 21.7 is left out
    assert best_per_server([entry(8, 21.7, False)])["mlserver"].peak_qps_at_slo == 21.7  # nothing better


def test_goodput_concurrency_and_rates_on_a_remote_endpoint(tmp_path, mlp_onnx, remote_endpoint):
    """--slo, --concurrency and --rates: every point has its attainment and goodput, the closed-loop levels and
    the asked-for rates sit beside the peak search's probes, and the JSON and the store keep every point."""
    out = tmp_path / "points.json"
    result = invoke("serve-bench", "--model", mlp_onnx, "--target", remote_endpoint, "--protocol", "kserve-v2",
                    "--target-model", "double", "--probe-ms", "300", "--slo", "p99_ms=200", "--concurrency", "1,4",
                    "--rates", "20", "--json", out, "--db", tmp_path / "r.db", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(out.read_text())["servers"]
    levels = [p for p in entry["points"] if p["mode"] == "concurrency"]
    assert [p["offered"] for p in levels] == [1.0, 4.0]
    assert 20.0 in [p["offered"] for p in entry["points"] if p["mode"] == "rate"]
    for p in entry["points"]:
        assert 0 <= p["slo_attainment_pct"] <= 100 and p["requests"] > 0
        assert p["goodput_qps"] == pytest.approx(p["completed_qps"] * p["slo_attainment_pct"] / 100)
        assert p["latency_ms_p50"] <= p["latency_ms_p99"]
    assert all(p["meets_slo"] == (p["slo_attainment_pct"] >= 99 and p["errors"] == 0) for p in levels)
    assert entry["slo_attainment_pct"] is not None and entry["goodput_qps"] > 0  # at the peak
    # No cost or energy for a remote endpoint: its host is not this one (started servers get both).
    assert entry["at_slo"] is None and all(p["energy_j_per_request"] is None for p in entry["points"])
    assert "Load points — SLO: latency ≤ 200 ms for 99 % of requests" in result.output
    assert "in flight" in result.output and "goodput" in result.output
    # The store keeps every point, for `report`'s curves.
    report = invoke("report", "1", "--db", tmp_path / "r.db", "--output", tmp_path / "curves.html")
    assert report.exit_code == 0, report.output
    html = (tmp_path / "curves.html").read_text()
    assert "Latency vs throughput" in html and "Goodput" in html


@pytest.mark.parametrize("slo,problem", [("p99_ms", "not NAME=MILLISECONDS"), ("p99_ms=-3", "positive"),
                                         ("latency=100", "unknown bound 'latency'"),
                                         ("p99_ms=100,p90_ms=50", "bounds the latency twice")])
def test_a_bad_slo_is_one_clear_line(tmp_path, slo, problem):
    result = invoke("serve-bench", "--slo", slo, "--db", tmp_path / "r.db")
    assert result.exit_code != 0 and problem in result.output, result.output
    assert "Traceback" not in result.output and "p99_ms=100" in result.output  # the fix names the form


def test_cost_and_energy_at_the_slo_come_from_the_peak_point():
    """$/1M requests is the price per hour over the goodput at the peak rate (the highest that passed and held),
    with its basis; a remote endpoint gets no price, and an entry with no peak gets nothing."""
    from inferarena.config import CostConfig
    from inferarena.serving.bench import ServeBenchConfig, _costs
    from inferarena.serving.records import LoadPoint, ServeBenchResult, ServerEntry

    def at(rate, goodput, meets=True, repeat=False):
        return LoadPoint("rate", rate, 100, goodput, slo_attainment_pct=100.0, goodput_qps=goodput, meets_slo=meets,
                         energy_j_per_request=0.5, energy_source="estimate", repeat=repeat)

    started = ServerEntry("triton", {"max_batch_size": 8}, "b8", "ok", peak_qps_at_slo=40.0,
                          points=[at(20, 20), at(40, 39), at(80, 50, meets=False), at(40, 10, repeat=True)],
                          best={"energy_basis": "estimate: the server's CPU time x 3 W per thread"})
    remote = ServerEntry("remote", {}, "remote endpoint", "ok", target="http://x", peak_qps_at_slo=40.0,
                         points=[at(40, 39)])
    nothing = ServerEntry("mlserver", {}, "b1", "no QPS met the SLO", points=[at(5, 1, meets=False)])
    result = ServeBenchResult("m", "predict", "cpu", [started, remote, nothing], [], {}, "p99")
    note = _costs(ServeBenchConfig(cost=CostConfig(usd_per_hour=3.6)), result)
    a = started.at_slo
    assert (a.rate_qps, a.goodput_qps) == (40, 39) and a.usd_per_1m_requests == pytest.approx(1000 / 39)
    assert a.price_basis == "$3.6/h (from config)" and not a.price_estimated
    assert a.energy_j_per_request == 0.5 and a.energy_basis.startswith("estimate")
    assert remote.at_slo is None and nothing.at_slo is None and "$3.6/h" in note
    _costs(ServeBenchConfig(), result)  # the built-in price for a host like this one: said to be an estimate
    assert started.at_slo.price_estimated
