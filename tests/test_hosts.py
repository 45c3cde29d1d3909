"""Host-shaped logic over the machines users have: 1 to 192 logical cores, AVX2 only, AVX512-VNNI and AMX,
with and without a GPU. The host's facts are faked (a `Host`, or `INFERARENA_HOST` for whole runs);
the work is real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import quick_config

from inferarena import hardware, models, workloads
from inferarena.config import RunConfig
from inferarena.errors import ConfigError
from inferarena.hardware import Gpu, Host
from inferarena.kinds.predict import Predict
from inferarena.plan import plan
from inferarena.results import VariantSpec
from inferarena.search import build_space, host_space
from inferarena.trackers import cost, energy, peak

AVX2 = {"sse4_2", "avx", "avx2", "fma", "f16c"}
VNNI = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}
ZEN4 = VNNI | {"avx512_bf16"}
AMX = ZEN4 | {"avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"}


def _host(model, logical, physical, flags, memory_gb=16.0):
    return Host(cpu_model=model, logical_cores=logical, physical_cores=physical, flags=frozenset(flags),
                memory_gb=memory_gb)


HOSTS = {
    "1-core AVX2": _host("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", 1, 1, AVX2, 2.0),
    "2-core Zen 4 VM": _host("AMD EPYC", 2, 2, ZEN4, 24.0),
    "8-thread AVX512-VNNI": _host("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", 8, 4, VNNI, 32.0),
    "16-thread AVX2 laptop": _host("AMD Ryzen 7 5800U with Radeon Graphics", 16, 8, AVX2, 16.0),
    "64-core Zen 4": _host("AMD EPYC 9554 64-Core Processor", 64, 64, ZEN4, 256.0),
    "192-thread AMX Xeon": _host("Intel(R) Xeon(R) Platinum 8488C", 192, 96, AMX, 768.0),
}
H100 = Gpu(name="NVIDIA H100 80GB HBM3", memory_gb=79.6, compute_capability=(9, 0))


@pytest.mark.parametrize("name", HOSTS)
def test_the_plan_gives_each_variant_every_core_and_only_native_precisions(name, mlp_onnx):
    host = HOSTS[name]
    config = RunConfig.parse({"model": str(mlp_onnx), "quick": True, "workload": {"num_samples": 8, "eval_samples": 4},
                              "runtimes": [{"name": "onnxruntime"}, {"name": "openvino"}], "pipelines": []})
    artifact = models.resolve(config.model)
    specs, notes = plan(config, artifact, workloads.build(artifact, config.workload, config.generation), host, "cpu")
    assert specs and all(s.knobs["threads"] == host.logical_cores for s in specs)
    precisions = {s.precision for s in specs if s.runtime == "openvino"}
    assert ("bf16" in precisions) == host.has_bf16
    assert ("fp16" in precisions) == host.has_fp16, (precisions, notes)
    if not host.has_bf16:
        assert any("openvino/bf16: this CPU has no native bf16" in n for n in notes), notes


@pytest.mark.parametrize("name", HOSTS)
def test_knob_spaces_scale_with_the_cores(name):
    host = HOSTS[name]
    n = host.logical_cores
    threads = host_space("threads", n, host)
    streams = host_space("streams", n, host)
    assert max(threads) == n and min(threads) >= max(1, n // 2)
    assert (len(threads) == 2) == (n >= 8 or host.physical_cores < n)  # half the threads on big or SMT hosts
    assert streams[0] == 1 and max(streams) <= n and all(b == 2 * a for a, b in zip(streams, streams[1:]))
    assert max(streams) * 2 > n  # up to the largest power of two the threads hold
    spec = VariantSpec(name="onnxruntime/fp32/fixed", runtime="onnxruntime", precision="fp32", shape="fixed",
                       knobs={"threads": n, "streams": 1, "graph_optimization_level": "all", "allow_spinning": True})
    dims = {d.name: d.choices for d in build_space([spec], ["fixed"], "throughput", Predict(), host=host).dimensions}
    # A space with one choice is no dimension: a 1-core host searches neither threads nor streams.
    assert dims.get("onnxruntime.threads", (n,)) == threads and dims.get("onnxruntime.streams", (1,)) == streams
    assert ("onnxruntime.threads" in dims) == (len(threads) > 1)


def test_the_2_core_vm_keeps_its_search_space():
    """On the machine the earlier searches ran on (2 cores, no SMT): no threads dimension, streams 1 and 2."""
    host = HOSTS["2-core Zen 4 VM"]
    assert host_space("threads", 2, host) == (2,) and host_space("streams", 2, host) == (1, 2)
    assert host_space("streams", 192, HOSTS["192-thread AMX Xeon"]) == (1, 2, 4, 8, 16, 32, 64, 128)


@pytest.mark.parametrize("name", HOSTS)
def test_every_host_has_a_price_and_an_energy_basis(name):
    host = HOSTS[name]
    price = cost.price(host)
    assert price.usd_per_hour > 0 and price.label
    assert cost.usd_per_million(price, 100.0) > 0
    watts, how = energy.watts_per_thread(host, None, None)
    assert 0 < watts < 20 and how
    if host.cpu_model.startswith("AMD EPYC 9554"):  # in the TDP table: its own figure, and the source
        assert how == "TDP 360 W / 128 threads (AMD product page, EPYC 9554)"


def test_a_gpu_run_is_priced_as_a_gpu_instance():
    price = cost.price(HOSTS["192-thread AMX Xeon"], device="cuda", gpus=(H100,) * 8)
    assert "H100" in price.label and price.usd_per_hour > 10


def test_peak_cache_keys_and_an_fp16_peak_where_the_cpu_computes_fp16(tmp_path):
    keys = {peak.cache_file(tmp_path, host, "2.13.0") for host in HOSTS.values()}
    assert len(keys) == len(HOSTS)
    for name, host in HOSTS.items():
        assert ("fp16" in peak.precisions(host)) == ("avx512_fp16" in host.flags), name


def test_hardware_classes_tell_the_hosts_apart():
    classes = {hardware.hardware_class({"cpu_model": h.cpu_model, "logical_cores": h.logical_cores,
                                        "accelerator": None}) for h in HOSTS.values()}
    assert len(classes) == len(HOSTS)
    gpu_class = hardware.hardware_class({"cpu_model": "AMD EPYC 9554", "logical_cores": 64, "accelerator": "8x H100"})
    assert gpu_class.endswith("8x H100")


def _simulate(monkeypatch, facts):
    monkeypatch.setenv(hardware.SIMULATED, json.dumps(facts) if isinstance(facts, dict) else facts)
    hardware.host.cache_clear()
    hardware.gpus.cache_clear()


@pytest.fixture
def restore_host():
    yield
    hardware.host.cache_clear()
    hardware.gpus.cache_clear()


def test_a_simulated_host_replaces_the_facts_read_here(monkeypatch, restore_host, tmp_path):
    facts = {"cpu_model": "Intel(R) Xeon(R) Platinum 8488C", "logical_cores": 192, "physical_cores": 96,
             "flags": sorted(AMX), "memory_gb": 768, "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_gb": 80,
                                                              "compute_capability": [9, 0]}]}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(facts))
    _simulate(monkeypatch, str(path))
    h = hardware.host()
    assert (h.logical_cores, h.physical_cores, h.has_amx, h.has_fp16) == (192, 96, True, True)
    assert "AMX-INT8" in h.features and hardware.gpus()[0].compute_capability == (9, 0)
    assert hardware.node_info()["accelerator"] == "NVIDIA H100 80GB HBM3"
    assert hardware.resolve_device("auto") == "cuda"
    from inferarena import environment

    card = environment.capture()
    assert card["simulated_host"] is True and card["logical_cores"] == 192


def test_a_bad_simulated_host_is_one_clear_error(monkeypatch, restore_host):
    _simulate(monkeypatch, "{not json")
    with pytest.raises(ConfigError, match="INFERARENA_HOST"):
        hardware.host()
    _simulate(monkeypatch, {"logical_cores": "many"})
    with pytest.raises(ConfigError, match="wrong type"):
        hardware.host()


@pytest.mark.parametrize("cores,model,flags", [(16, "AMD Ryzen 7 5800U with Radeon Graphics", AVX2),
                                               (64, "AMD EPYC 9554 64-Core Processor", ZEN4),
                                               (192, "Intel(R) Xeon(R) Platinum 8488C", AMX)])
def test_run_quick_measures_and_stores_on_a_simulated_big_host(tmp_path, mlp_onnx, cores, model, flags):
    """The whole CLI, every process of it, on a host of `cores` logical cores: measured (on this machine's real
    cores), stored, priced with a label that names where the price came from."""
    facts = {"cpu_model": model, "logical_cores": cores, "physical_cores": cores // 2, "flags": sorted(flags),
             "memory_gb": 64}
    env = {**os.environ, hardware.SIMULATED: json.dumps(facts)}
    db = tmp_path / "runs.db"
    # Two threads in fact: a simulated 192-thread pool on 2 real cores measures the oversubscription, not the host.
    config = quick_config(tmp_path, model=str(mlp_onnx), scenarios=["offline"], threads=2,
                          runtimes=[{"name": "onnxruntime", "precisions": ["fp32"]}])
    done = subprocess.run([sys.executable, "-m", "inferarena", "run", "--config", str(config), "--db", str(db),
                           "--cache-dir", str(tmp_path / "cache"), "--json", str(tmp_path / "r.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads((tmp_path / "r.json").read_text())
    env_card = run["environment"]
    assert env_card["logical_cores"] == cores and env_card["simulated_host"] is True
    price = env_card["price"]
    assert price and ("$" in price) and ("estimate" in price or "/" in price), price
    variants = {v["name"]: v for v in run["variants"]}
    assert all(v["status"] == "ok" for v in variants.values()), variants
    assert all(v["node"]["logical_cores"] == cores for v in variants.values())
    assert all(v["metrics"].get("offline.cost_usd_per_1m") for v in variants.values()), variants


def test_a_simulated_gpu_host_plans_a_cuda_run_priced_as_a_gpu_instance(monkeypatch, restore_host, mlp_onnx, capsys):
    """8x H100 behind a 192-thread Xeon: `--device cuda` is planned and priced as an 8-GPU instance. torch here is a
    CPU build, so its own check of the device is set aside, as tests/test_devices.py does; nothing is measured."""
    from inferarena import runtimes
    from inferarena.cli import main

    gpu = {"name": "NVIDIA H100 80GB HBM3", "memory_gb": 79.6, "compute_capability": [9, 0]}
    _simulate(monkeypatch, {"cpu_model": "Intel(R) Xeon(R) Platinum 8488C", "logical_cores": 192,
                            "physical_cores": 96, "flags": sorted(AMX), "gpus": [gpu] * 8})
    monkeypatch.setattr(runtimes.get("onnxruntime"), "unavailable_on", classmethod(lambda cls, device: None))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", str(mlp_onnx), "--quick", "--device", "cuda", "--runtimes", "onnxruntime",
              "--dry-run"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0, out
    assert "device cuda" in out and "192 logical cores (simulated: INFERARENA_HOST)" in out
    assert "8x H100" in out and "H100 GPUs" in out, out


def test_a_machine_figure_read_while_others_keep_the_cpu_busy_is_not_cached(tmp_path, monkeypatch):
    """The memory bandwidth read on a loaded machine stood for the machine in later runs (decode at 118 % of its
    roofline): now it serves its own run only."""
    import psutil

    from inferarena.trackers import bandwidth, cpu

    pytest.importorskip("torch")
    loops = min(psutil.cpu_count() or 1, 4)
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(loops)]
    try:
        with cpu.BusyElsewhere() as others:
            end = time.time() + 1.0
            while time.time() < end:
                pass
    finally:
        for p in spinning:
            p.kill()
    assert others.pct >= 0.4 * 100 * loops / (psutil.cpu_count() or 1), others.pct
    host = HOSTS["2-core Zen 4 VM"]
    monkeypatch.setattr(cpu, "BUSY_ELSEWHERE_MAX_PCT", -1.0)  # as if the machine were busy
    busy = bandwidth.load_or_measure(tmp_path, host, 1)
    assert busy["read_gb_per_s"] > 0 and "busy_elsewhere_pct" in busy
    assert not list((tmp_path / "bandwidth").glob("*.json"))  # used, not cached
    monkeypatch.setattr(cpu, "BUSY_ELSEWHERE_MAX_PCT", 1000.0)
    bandwidth.load_or_measure(tmp_path, host, 1)
    assert len(list((tmp_path / "bandwidth").glob("*.json"))) == 1
