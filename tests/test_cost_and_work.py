import csv
from importlib import resources

import numpy as np
import pytest
from conftest import make_mlp_onnx

from inferarena.errors import ConfigError
from inferarena.hardware import Gpu, Host
from inferarena.trackers.cost import instances, price, usd_per_million
from inferarena.trackers.flops import OnnxFlopCounter
from inferarena.trackers.work import CountingSession, work_figures

HOST = Host("x", 2, 1, frozenset())
AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
CPUS = {  # model, flags, vendor the pick must have
    "Intel AMX": ("Intel(R) Xeon(R) Platinum 8488C", AMX, "intel"),
    "AMD Zen 4": ("AMD EPYC 9R14 96-Core Processor", ZEN4, "amd"),
    "Arm": ("Neoverse-V1", frozenset(), "arm"),
    "unknown vendor": ("Mystery CPU", frozenset(), None),
}
H100 = Gpu(name="NVIDIA H100 80GB HBM3", memory_gb=80.0)


def _picked(label: str):
    """The instance a default label names (it starts with the name)."""
    return instances()[label.split(" ")[0]]


def test_cost_formula_and_price_choice():
    own = price(HOST, usd_per_hour=3.6)
    assert usd_per_million(own, throughput_sps=1.0) == pytest.approx(1000.0)  # 3.6 / 3600 * 1e6
    assert usd_per_million(own, 0.0) is None
    assert "from config" in own.label
    named = price(HOST, instance="aws/m7i.large")
    assert named.usd_per_hour == 0.1008 and "aws/m7i.large" in named.label and "from cost.instance" in named.label
    default = price(HOST)
    assert "cheapest built-in CPU instance with 2+ vCPUs" in default.label and "no vendor" in default.label
    with pytest.raises(ConfigError, match="unknown instance"):
        price(HOST, instance="aws/z99.huge")


@pytest.mark.parametrize("cores", [1, 2, 8, 16, 64, 192, 384])
@pytest.mark.parametrize("cpu", CPUS)
def test_every_host_gets_a_price_never_a_refusal(cpu, cores):
    model, flags, vendor = CPUS[cpu]
    got = price(Host(model, cores, max(1, cores // 2), flags, memory_gb=4.0 * cores))
    assert got.usd_per_hour > 0 and "$" in got.label and "as published 2024" in got.label, got.label
    if cores > 224:  # past the largest instance in the table
        assert got.label.startswith(f"estimate: {cores} vCPUs × $") and "per vCPU-hour of" in got.label
        return
    picked = _picked(got.label)
    assert picked.vcpus >= cores and not picked.gpu_count and got.usd_per_hour == picked.usd_per_hour
    assert vendor is None or picked.cpu_vendor == vendor, got.label
    # the smallest that fits: nothing of the same vendor with enough vCPUs is cheaper
    same = [i for i in instances().values() if not i.gpu_count and i.vcpus >= cores
            and (vendor is None or i.cpu_vendor == vendor)]
    if vendor != "arm" or cores <= 64:  # past Graviton3's 64 vCPUs the family gives way to the vendor
        assert picked.usd_per_hour == min(i.usd_per_hour for i in same if i.cpu_key == picked.cpu_key)


@pytest.mark.parametrize("model, cores, flags, expected", [
    ("Intel(R) Xeon(R) Platinum 8488C", 2, AMX, "aws/c7i.large"),  # the price stored runs used
    ("Intel(R) Xeon(R) Platinum 8488C", 16, AMX, "aws/c7i.4xlarge"),
    ("Intel(R) Xeon(R) Platinum 8488C", 192, AMX, "aws/c7i.48xlarge"),
    ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 16, ZEN4 - {"avx512_bf16"}, "azure/Standard_F16s_v2"),
    ("AMD EPYC", 2, ZEN4, "aws/c7a.large"),  # this project's VM: Zen 4 told from AVX512-BF16 alone
    ("AMD EPYC 9R14 96-Core Processor", 64, ZEN4, "aws/c7a.16xlarge"),
    ("AMD EPYC 7R13 Processor", 16, frozenset({"avx2"}), "aws/c6a.4xlarge"),
    ("Neoverse-V1", 16, frozenset(), "aws/c7g.4xlarge"),
    ("Neoverse-V1", 128, frozenset(), "aws/c8g.48xlarge"),  # Graviton3 stops at 64: the next Arm instance
    ("Neoverse-V1", 224, frozenset(), "gcp/n2d-standard-224"),  # no Arm instance that large: any vendor
    ("aarch64", 2, frozenset(), "aws/c6g.large"),
    ("QEMU Virtual CPU version 2.5+", 16, frozenset({"sse2", "avx2"}), "aws/c6a.4xlarge"),  # x86, not Arm
])
def test_the_default_is_the_cheapest_fitting_instance_of_the_hosts_family(model, cores, flags, expected):
    got = price(Host(model, cores, cores, flags))
    assert _picked(got.label).name == expected, got.label
    assert "cheapest built-in" in got.label and "set cost.instance or cost.usd_per_hour" in got.label


def test_past_the_largest_instance_the_price_is_per_vcpu_of_the_nearest_family():
    amx = price(Host("Intel(R) Xeon(R) Platinum 8488C", 384, 192, AMX))
    assert amx.usd_per_hour == pytest.approx(384 * 8.568 / 192)
    assert amx.label.startswith("estimate: 384 vCPUs × $0.044625 per vCPU-hour of aws/c7i = $17.136/h")
    assert "largest: aws/c7i.48xlarge" in amx.label and "no built-in instance has 384+ vCPUs" in amx.label
    arm = price(Host("Neoverse-V1", 384, 384, frozenset()))
    assert arm.usd_per_hour == pytest.approx(384 * 2.32 / 64) and "largest: aws/c7g.16xlarge" in arm.label  # Graviton3


def test_a_cuda_run_is_priced_as_a_gpu_instance():
    host = Host("Intel(R) Xeon(R) Platinum 8480+", 192, 96, AMX)
    one = price(host, device="cuda", gpus=(H100,))
    assert _picked(one.label).gpu_model == "H100" and "1+ H100 GPUs" in one.label
    eight = price(host, device="cuda", gpus=(H100,) * 8)
    picked = _picked(eight.label)
    assert picked.gpu_model == "H100" and picked.gpu_count == 8
    assert eight.usd_per_hour == min(i.usd_per_hour for i in instances().values()
                                     if i.gpu_model == "H100" and i.gpu_count >= 8)
    a100 = price(host, device="cuda", gpus=(Gpu("NVIDIA A100-SXM4-80GB", 80.0),))
    assert _picked(a100.label).gpu_memory_gib == 80  # not the cheaper 40 GB one
    assert not _picked(price(host, device="cpu", gpus=(H100,)).label).gpu_count  # a CPU run stays a CPU instance
    sixteen = price(host, device="cuda", gpus=(H100,) * 16)
    assert sixteen.label.startswith("estimate: 16 GPUs × $")
    assert "no built-in instance has 16+ H100 GPUs" in sixteen.label


def test_an_unknown_gpu_is_priced_per_gpu_of_the_nearest_class():
    got = price(Host("x", 16, 8, frozenset()), device="cuda", gpus=(Gpu("NVIDIA RTX 9999", 48.0),) * 2)
    assert got.label.startswith("estimate: 2 GPUs × $") and "per GPU-hour" in got.label, got.label
    assert "'NVIDIA RTX 9999' (48 GB) is not in the table, priced as the L40S 48 GB" in got.label
    assert got.usd_per_hour == pytest.approx(2 * 30.131 / 8)


def test_config_and_a_named_instance_win_over_the_default():
    assert price(HOST, "aws/p5.48xlarge", 2.5, device="cuda", gpus=(H100,)).usd_per_hour == 2.5
    named = price(Host("Neoverse-V1", 384, 384, frozenset()), "gcp/n2-standard-2", device="cuda", gpus=(H100,))
    assert named.usd_per_hour == 0.097118 and named.label.startswith("gcp/n2-standard-2 $0.097118/h (Google")
    with pytest.raises(ConfigError, match=r"aws/c7i\.large.*prices\.csv"):
        price(HOST, instance="aws/c7i.larg")


def test_the_price_table_is_data_with_a_source_and_date_per_row():
    text = (resources.files("inferarena.trackers") / "prices.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    names = [r["instance"] for r in rows]
    assert len(names) == len(set(names)) == len(instances())
    for r in rows:
        assert r["source"] and r["as_of"] and r["region"] and float(r["usd_per_hour"]) > 0, r
        assert r["instance"].startswith(f"{r['provider']}/") and r["family"].startswith(f"{r['provider']}/"), r
        assert r["cpu_vendor"] in ("intel", "amd", "arm") and r["cpu_family"] and r["cpu_key"] and int(r["vcpus"]) >= 1
        assert bool(r["gpu_model"]) == bool(r["gpu_count"]) == bool(r["gpu_memory_gib"]), r
    # the prices stored runs were computed with are unchanged
    kept = {"aws/c7i.large": 0.08925, "aws/m7i.large": 0.1008, "aws/m7i.xlarge": 0.2016, "aws/c7i.2xlarge": 0.357,
            "gcp/n2-standard-2": 0.097118, "aws/g5.xlarge": 1.006}
    assert {name: instances()[name].usd_per_hour for name in kept} == kept
    cpu = [i for i in instances().values() if not i.gpu_count]
    for vendor in ("intel", "amd", "arm"):  # each vendor from 2 to 192 vCPUs
        sizes = {i.vcpus for i in cpu if i.cpu_vendor == vendor}
        assert min(sizes) <= 2 and max(sizes) >= 192, (vendor, sorted(sizes))
    assert {i.provider for i in cpu} == {"aws", "gcp", "azure"}
    assert {"A10G", "L4", "A100", "H100"} <= {i.gpu_model for i in instances().values()}


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
    # The headroom: the same useful work against the host's fastest precision (INT8 at 4x the FP32 peak here).
    headroom = work_figures(session, samples=6, seconds=2.0, peak_gflops=1e-6, best_peak=("int8", 4e-6))
    assert headroom["best_peak_precision"] == "int8"
    assert headroom["useful_pct_of_best_peak"] == pytest.approx(headroom["useful_pct_of_peak"] / 4)


def test_the_pick_states_its_headroom_to_the_fastest_precision():
    """A BF16 pick on a host whose INT8 peak is higher says how far it is from INT8's ceiling."""
    from inferarena.recommend import _headroom
    from inferarena.results import ScenarioResult, VariantResult

    metrics = {"throughput_sps": 1000.0, "useful_pct_of_peak": 40.0, "best_peak_precision": "int8",
               "useful_pct_of_best_peak": 22.6}
    pick = VariantResult(name="openvino/bf16", runtime="openvino", precision="bf16", shape="dynamic",
                         scenarios={"offline": ScenarioResult("offline", True, None, "quick", metrics)})
    profile = type("P", (), {"key": "offline.throughput_sps"})()
    assert _headroom(pick, profile) == ("Headroom: its useful work is 40.00 % of its bf16 GEMM peak and 22.60 % of "
                                        "int8's, this host's fastest precision.")
    int8 = VariantResult(name="openvino/int8", runtime="openvino", precision="int8", shape="dynamic",
                         scenarios=pick.scenarios)
    assert _headroom(int8, profile) == ""


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
