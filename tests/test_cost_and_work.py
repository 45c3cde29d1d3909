import numpy as np
import pytest

from conftest import make_mlp_onnx
from inferarena.errors import ConfigError
from inferarena.hardware import Host
from inferarena.trackers.cost import price, usd_per_million
from inferarena.trackers.flops import OnnxFlopCounter
from inferarena.trackers.work import CountingSession, work_figures

HOST = Host("x", 2, 1, frozenset())


def test_cost_formula_and_price_choice():
    own = price(HOST, usd_per_hour=3.6)
    assert usd_per_million(own, throughput_sps=1.0) == pytest.approx(1000.0)  # 3.6 / 3600 * 1e6
    assert usd_per_million(own, 0.0) is None
    assert "from config" in own.label
    named = price(HOST, instance="aws/m7i.large")
    assert named.usd_per_hour == 0.1008 and "aws/m7i.large" in named.label
    default = price(HOST)
    assert "cheapest built-in with 2+ vCPUs" in default.label
    with pytest.raises(ConfigError, match="unknown instance"):
        price(HOST, instance="aws/z99.huge")


def test_onnx_flops_of_a_known_graph(tmp_path):
    # x[B,4] @ w1[4,8] -> relu -> @ w2[8,3]: 2*(4*8 + 8*3) = 112 FLOPs per sample.
    counter = OnnxFlopCounter(make_mlp_onnx(tmp_path / "m.onnx"), batched={"x"})
    assert counter({"x": (1, 4)}) == 112
    assert counter({"x": (5, 4)}) == 560


def test_work_figures_from_counted_batches(tmp_path):
    from inferarena.artifacts import Artifact
    from inferarena.runtimes.ort import OnnxRuntime

    pytest.importorskip("onnxruntime")
    path = make_mlp_onnx(tmp_path / "m.onnx")
    session = CountingSession(OnnxRuntime().load(Artifact(path, "onnx"), "fp32", OnnxRuntime.validate_knobs({}), {}))
    for batch in (1, 1, 4):
        session.predict({"x": np.ones((batch, 4), dtype=np.float32)})
    figures = work_figures(session, samples=6, seconds=2.0, peak_gflops=1e-6)
    assert figures["gflops_per_query"] == pytest.approx(112 / 1e9)
    assert figures["gflops_per_s"] == pytest.approx(6 * 112 / 2.0 / 1e9)
    assert figures["pct_of_peak"] == pytest.approx(100 * 6 * 112 / 2.0 / 1e9 / 1e-6)


def test_peak_microbenchmark():
    pytest.importorskip("torch")
    from inferarena.trackers.peak import measure

    peaks = measure(threads=1, seconds=0.02)
    assert peaks["fp32"] > 0


def test_sequence_fit_is_exact_and_declines_what_it_cannot_model():
    from collections import Counter

    from inferarena.trackers.work import _sequence_fit

    def transformer(shapes):  # linear layers in L, attention in L²
        batch, length = next(iter(shapes.values()))
        return float(batch * (1000 + 300 * length + 7 * length**2))

    seen = Counter({(("ids", (1, n)), ("mask", (1, n))): 1 for n in range(10, 20)})
    fit = _sequence_fit(transformer, seen)
    assert fit({"ids": (32, 77), "mask": (32, 77)}) == pytest.approx(transformer({"ids": (32, 77)}))
    cubic = lambda shapes: float(next(iter(shapes.values()))[1] ** 3)  # noqa: E731 - not a quadratic
    assert _sequence_fit(cubic, seen) is None
    images = Counter({(("x", (1, 3, 8, 8)),): 1 for _ in range(6)})
    assert _sequence_fit(transformer, images) is None
