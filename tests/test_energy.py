"""Energy readers against realistic fixtures: a powercap tree laid out as sysfs is, and a stand-in
for the NVML library (no GPU on the test machines)."""

import sys
import time
import types
from pathlib import Path

import pytest

from inferarena.hardware import Host
from inferarena.trackers.energy import EnergyMeter, NvmlReader, RaplReader, watts_per_thread

MAX_RANGE = 262143328850  # a real max_energy_range_uj value


def _zone(root: Path, dirname: str, name: str, energy_uj: int) -> Path:
    zone = root / dirname
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{MAX_RANGE}\n")
    (zone / "enabled").write_text("1\n")
    return zone


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    # As /sys/class/powercap lists them: the control type, packages, their sub-zones, and psys.
    (tmp_path / "intel-rapl").mkdir()
    (tmp_path / "intel-rapl" / "enabled").write_text("1\n")
    _zone(tmp_path, "intel-rapl:0", "package-0", MAX_RANGE - 1_000_000)  # about to wrap
    _zone(tmp_path, "intel-rapl:0:0", "core", 5_000)
    _zone(tmp_path, "intel-rapl:1", "package-1", 10_000_000)
    _zone(tmp_path, "intel-rapl:2", "psys", 99_000_000)
    return tmp_path


def _advance(zone: Path, microjoules: int) -> None:
    path = zone / "energy_uj"
    path.write_text(f"{(int(path.read_text()) + microjoules) % (MAX_RANGE + 1)}\n")


def test_rapl_reads_packages_only_and_handles_wrap_around(powercap):
    reader = RaplReader(powercap)
    assert reader.available() and len(reader.zones) == 2  # packages 0 and 1; not core, not psys
    start = reader.read()
    _advance(powercap / "intel-rapl:0", 3_000_000)  # wraps past max_energy_range_uj
    _advance(powercap / "intel-rapl:1", 2_000_000)
    _advance(powercap / "intel-rapl:0:0", 7_000_000)  # inside package 0 already
    assert int((powercap / "intel-rapl:0" / "energy_uj").read_text()) < start[0]
    assert reader.joules(start, reader.read()) == pytest.approx(5.0)


def test_rapl_meter_subtracts_idle_power(powercap):
    meter = EnergyMeter(Host("x", 2, 1, frozenset()), idle_s=0, rapl_root=powercap)
    assert meter.source == "rapl"
    meter.idle_w = 2.0
    with meter.track() as tracker:
        _advance(powercap / "intel-rapl:0", 10_000_000)
        time.sleep(0.5)
    stats = tracker.result
    assert stats.energy_source == "rapl" and "idle 2.0 W subtracted" in stats.energy_basis
    assert stats.energy_j == pytest.approx(10.0 - 2.0 * 0.5, abs=0.1)


def test_no_counter_means_a_labelled_estimate(tmp_path):
    meter = EnergyMeter(Host("AMD EPYC 7763 64-Core Processor", 2, 1, frozenset()), rapl_root=tmp_path)
    assert meter.source == "estimate"
    with meter.track() as tracker:
        sum(i * i for i in range(300_000))  # burn some CPU
    stats = tracker.result
    assert stats.energy_source == "estimate" and stats.energy_j > 0
    assert "280 W / 128 threads" in stats.energy_basis and stats.energy_basis.startswith("estimate")


def test_estimate_basis():
    unknown = Host("Mystery CPU", 2, 1, frozenset())
    w, basis = watts_per_thread(unknown, None, None)
    assert w > 0 and "not in the TDP table" in basis
    w, basis = watts_per_thread(unknown, 100.0, 50)
    assert w == 2.0 and "from config" in basis


class FakeNvml(types.ModuleType):
    """The subset of pynvml the reader uses, with counters that advance like a busy GPU's."""

    def __init__(self, fail: bool = False):
        super().__init__("pynvml")
        self.fail, self.energy_mj = fail, [1_000_000, 2_000_000]

    def nvmlInit(self):
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy_mj[handle]

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=512 * 2**20)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=40 + 20 * handle)


def test_nvml_energy_and_utilization(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    reader = NvmlReader()
    assert reader.available()
    start = reader.read()
    fake.energy_mj = [1_050_000, 2_025_000]  # +50 J and +25 J
    assert reader.joules(start, reader.read()) == pytest.approx(75.0)
    assert reader.utilization() == {"gpu_mem_used_mb": 1024.0, "gpu_util_pct": 50.0}


def test_nvml_unavailable_without_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail=True))
    assert not NvmlReader().available()


def test_gpu_tracker_samples_memory_and_utilization(monkeypatch):
    from inferarena.trackers.energy import GpuTracker

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    with GpuTracker(NvmlReader(), interval_s=0.01) as tracker:
        time.sleep(0.05)
    assert tracker.result.gpu_mem_used_mb_peak == 1024.0 and tracker.result.gpu_util_pct_avg == 50.0
