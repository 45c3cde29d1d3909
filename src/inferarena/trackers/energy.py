"""Energy of the inference work, from real counters where they exist, else a labelled estimate.

Sources, in order of preference:
- `rapl`: Linux powercap RAPL (`/sys/class/powercap/<zone>/energy_uj`, Intel and AMD), top-level
  package zones only (sub-zones are parts of them), wrap-around handled with `max_energy_range_uj`.
- `nvml`: NVIDIA's total-energy counter per GPU (`nvmlDeviceGetTotalEnergyConsumption`, mJ), for
  variants on `cuda`; the window also samples the GPU's memory in use, how busy it was and the SM
  utilization of the processes on it (`GpuTracker`). Written against a fake NVML and not yet read
  on a real GPU (docs/guide.md, "GPUs").
- `estimate`: the worker's CPU time × a per-hardware-thread power taken from the CPU's TDP (config,
  or the table below). Never shown without its label and basis.
For counters, idle power measured just before the run is subtracted, so the figure is the energy
of the inference work rather than of the whole machine; their basis starts with `measured:`.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from inferarena.hardware import Host
from inferarena.trackers.sampling import Sampler

POWERCAP = Path("/sys/class/powercap")

# TDP (W), cores, hardware threads, source. Vendor specifications; extend as needed.
TDP_TABLE: dict[str, tuple[float, int, int, str]] = {
    "AMD EPYC 7763": (280.0, 64, 128, "AMD product page, EPYC 7763"),
    "AMD EPYC 9654": (360.0, 96, 192, "AMD product page, EPYC 9654"),
    "Intel(R) Xeon(R) Platinum 8380": (270.0, 40, 80, "Intel ARK, Xeon Platinum 8380"),
    "Intel(R) Xeon(R) Platinum 8480+": (350.0, 56, 112, "Intel ARK, Xeon Platinum 8480+"),
    "Intel(R) Xeon(R) Gold 6248R": (205.0, 24, 48, "Intel ARK, Xeon Gold 6248R"),
    "Intel(R) Xeon(R) Platinum 8592+": (350.0, 64, 128, "Intel ARK, Xeon Platinum 8592+"),
    "Intel(R) Xeon(R) 6980P": (500.0, 128, 256, "Intel ARK, Xeon 6980P"),
    "AMD EPYC 9554": (360.0, 64, 128, "AMD product page, EPYC 9554"),
    "AMD EPYC 9754": (360.0, 128, 256, "AMD product page, EPYC 9754"),
    "AMD EPYC 9965": (500.0, 192, 384, "AMD product page, EPYC 9965"),
}


@dataclass(frozen=True)
class EnergyStats:
    energy_j: float  # of the inference work in the window (idle subtracted for counters)
    power_w_avg: float
    energy_source: str  # rapl | nvml | estimate
    energy_basis: str  # how the figure was obtained, in words

    def as_dict(self) -> dict:
        return asdict(self)


class RaplReader:
    """Package-level RAPL zones under a powercap root (a fixture directory in tests)."""

    def __init__(self, root: Path = POWERCAP):
        self.zones = []
        for zone in sorted(root.glob("*")):
            # Top-level zones are named like intel-rapl:0; sub-zones (intel-rapl:0:0) are inside them.
            if not re.fullmatch(r"[a-z-]+rapl:\d+", zone.name):
                continue
            name = (zone / "name").read_text().strip() if (zone / "name").is_file() else zone.name
            if name == "psys":  # platform-wide: would count the packages twice
                continue
            try:
                int((zone / "energy_uj").read_text())
                wrap = int((zone / "max_energy_range_uj").read_text()) + 1
            except (OSError, ValueError):
                continue
            self.zones.append((zone / "energy_uj", wrap))

    def available(self) -> bool:
        return bool(self.zones)

    def read(self) -> list[int]:
        return [int(path.read_text()) for path, _ in self.zones]

    def joules(self, start: list[int], end: list[int]) -> float:
        return sum((e - s) % wrap for (_, wrap), s, e in zip(self.zones, start, end)) / 1e6


class NvmlReader:
    """Total energy of all visible NVIDIA GPUs, through nvidia-ml-py (`pynvml`)."""

    def __init__(self):
        self.handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.read()
        except Exception:  # no library, no driver, no GPU, or no energy counter on this GPU
            self.handles = []

    def available(self) -> bool:
        return bool(self.handles)

    def read(self) -> list[int]:
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles]  # mJ

    def joules(self, start: list[int], end: list[int]) -> float:
        return sum(e - s for s, e in zip(start, end)) / 1e3

    def utilization(self) -> dict[str, float]:
        used = sum(self.nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles)
        busy = [self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
        return {"gpu_mem_used_mb": used / 2**20, "gpu_util_pct": sum(busy) / len(busy)}

    def sm_utilization(self, since_us: int) -> tuple[float | None, int]:
        """SM utilization (%) since a timestamp (µs), as `nvidia-smi pmon` reports it: the processes' samples
        NVML kept (`nvmlDeviceGetProcessUtilization`), summed per sample time, averaged over the GPUs; and the
        newest timestamp seen. None where NVML keeps no process samples (older GPUs, some sandboxes)."""
        per_gpu, newest = [], since_us
        for handle in self.handles:
            try:
                samples = self.nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
            except Exception as exc:  # NVML_ERROR_NOT_FOUND: no process ran a kernel since then
                if "Not Found" in str(exc):
                    per_gpu.append(0.0)
                    continue
                return None, since_us
            by_time: dict[int, float] = {}
            for sample in samples:
                by_time[sample.timeStamp] = by_time.get(sample.timeStamp, 0.0) + sample.smUtil
                newest = max(newest, int(sample.timeStamp))
            per_gpu.append(sum(by_time.values()) / len(by_time) if by_time else 0.0)
        return (sum(per_gpu) / len(per_gpu) if per_gpu else None), newest


def watts_per_thread(host: Host, tdp_w: float | None, threads: int | None) -> tuple[float, str]:
    """Per-hardware-thread power for the estimate, and where it came from."""
    if tdp_w:
        count = threads or host.logical_cores
        return tdp_w / count, f"TDP {tdp_w:g} W / {count} threads (from config)"
    for model, (tdp, _cores, hw_threads, source) in TDP_TABLE.items():
        if model in host.cpu_model:
            return tdp / hw_threads, f"TDP {tdp:g} W / {hw_threads} threads ({source})"
    typical = statistics.median(tdp / t for tdp, _c, t, _s in TDP_TABLE.values())
    return typical, (
        f"CPU '{host.cpu_model}' not in the TDP table: median of the table, {typical:.2f} W per thread "
        "(set energy.tdp_w for a better estimate)"
    )


class EnergyMeter:
    """Chooses the source once per worker, measures idle power for counters, then meters windows."""

    def __init__(self, host: Host, tdp_w: float | None = None, tdp_threads: int | None = None,
                 idle_s: float = 1.0, device: str = "cpu", rapl_root: Path = POWERCAP):
        self.reader = NvmlReader() if device != "cpu" else RaplReader(rapl_root)
        self.idle_w = 0.0
        if self.reader.available():
            self.source = "nvml" if device != "cpu" else "rapl"
            if idle_s > 0:
                start, t0 = self.reader.read(), time.perf_counter()
                time.sleep(idle_s)
                self.idle_w = self.reader.joules(start, self.reader.read()) / (time.perf_counter() - t0)
        else:
            self.source = "estimate"
            self.w_per_thread, self.how = watts_per_thread(host, tdp_w, tdp_threads)

    @property
    def basis(self) -> str:
        if self.source == "estimate":
            return f"estimate: worker CPU time x {self.w_per_thread:.2f} W per thread; {self.how}"
        what = "NVML total-energy counter of the GPU" if self.source == "nvml" else "RAPL package counters"
        return f"measured: {what} ({self.source}), idle {self.idle_w:.1f} W subtracted"

    def track(self) -> "EnergyTracker":
        return EnergyTracker(self)

    def resource_trackers(self) -> list:
        """Trackers of the device's own resources: GPU memory and utilization where NVML is the source."""
        return [GpuTracker(self.reader)] if self.source == "nvml" else []


class GpuTracker(Sampler):
    """GPU memory in use and utilization from NVML, sampled over the window (GPU variants only)."""

    def __init__(self, reader: NvmlReader, interval_s: float = 0.1):
        self.reader, self.interval_s = reader, interval_s
        self.samples: list[dict[str, float]] = []
        self.sm: list[float] = []
        self._since_us = int(time.time() * 1e6)  # NVML stamps process samples in µs of wall-clock time
        self.result: GpuStats | None = None

    def sample(self) -> None:
        self.samples.append(self.reader.utilization())
        sm, self._since_us = self.reader.sm_utilization(self._since_us)
        if sm is not None:
            self.sm.append(sm)

    def finish(self) -> None:
        self.result = GpuStats(
            gpu_mem_used_mb_peak=max(s["gpu_mem_used_mb"] for s in self.samples),
            gpu_util_pct_avg=sum(s["gpu_util_pct"] for s in self.samples) / len(self.samples),
            gpu_sm_util_pct_avg=sum(self.sm) / len(self.sm) if self.sm else None,
        )


@dataclass(frozen=True)
class GpuStats:
    gpu_mem_used_mb_peak: float  # device-wide (every process and the CUDA context), the most sampled
    gpu_util_pct_avg: float  # % of time a kernel ran (NVML utilization.gpu), mean of the samples
    gpu_sm_util_pct_avg: float | None = None  # SM utilization of the processes (NVML process samples)

    def as_dict(self) -> dict:
        return asdict(self)


class EnergyTracker:
    def __init__(self, meter: EnergyMeter):
        self.meter = meter
        self.result: EnergyStats | None = None

    def __enter__(self) -> "EnergyTracker":
        self._t0 = time.perf_counter()
        if self.meter.source == "estimate":
            times = psutil.Process().cpu_times()
            self._cpu0 = times.user + times.system
        else:
            self._start = self.meter.reader.read()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.perf_counter() - self._t0
        if self.meter.source == "estimate":
            times = psutil.Process().cpu_times()
            joules = (times.user + times.system - self._cpu0) * self.meter.w_per_thread
        else:
            total = self.meter.reader.joules(self._start, self.meter.reader.read())
            joules = max(0.0, total - self.meter.idle_w * seconds)
        self.result = EnergyStats(
            energy_j=joules,
            power_w_avg=joules / seconds if seconds > 0 else 0.0,
            energy_source=self.meter.source,
            energy_basis=self.meter.basis,
        )
