"""$ per 1M inferences = instance $/hour ÷ (throughput × 3600) × 1e6, at each scenario's throughput.

The price is the user's own figure (`cost.usd_per_hour`), a named instance (`cost.instance`), or by
default the instance of `prices.csv` (beside this module) that a machine like this host would be rented
as; every output says which price was used and why. `prices.csv` holds on-demand Linux list prices of
AWS (us-east-1), Google Cloud (us-central1) and Azure (East US) as published in 2024, one row per
instance with its source and date. They are list prices, not quotes: prices change (AWS announced cuts
of up to 45% to its P4 and P5 GPU instances in 2025, for one) and differ by region and discount, so
check your provider's current price and set `cost.usd_per_hour` wherever the figure matters.

The default for a CPU run: the cheapest CPU instance with at least as many vCPUs as the host has
logical cores, of the host's CPU family where the model and flags tell it (AMX or AVX512-FP16: Sapphire
Rapids or later; AVX512-BF16 on AMD: Zen 4), else of its vendor, else of any vendor. Past the largest
instance, the host is priced per vCPU of the nearest family's largest instance, labelled an estimate.
A cuda run is priced as the cheapest instance with at least as many of its GPU; a GPU the table lacks,
per GPU of the class nearest in memory, labelled an estimate.

Example:
    >>> price(Host("Intel(R) Xeon(R) Platinum 8488C", 16, 8, frozenset({"amx_int8"}))).usd_per_hour
    0.714
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from operator import attrgetter

from inferarena.errors import ConfigError
from inferarena.hardware import Gpu, Host

PRICES = "prices.csv"
VENDORS = {"intel": "Intel", "amd": "AMD", "arm": "Arm", "x86": "x86"}  # x86: Intel or AMD, which unknown
_ROW_VENDORS = {"x86": {"intel", "amd"}}  # the prices.csv vendors a host vendor matches, where not just itself
_VCPUS, _GPUS = attrgetter("vcpus"), attrgetter("gpu_count")
_FIX = "set cost.instance or cost.usd_per_hour"

# Arm CPUs by what their model string names: (markers, family as labels say it, prices.csv cpu_key values).
_ARM_FAMILIES = (
    (("neoverse-v1", "graviton3"), "Neoverse-V1 (Graviton3)", {"graviton3"}),
    (("neoverse-v2", "graviton4", "axion"), "Neoverse-V2 (Graviton4, Axion)", {"graviton4", "axion"}),
    (("neoverse-n1", "graviton2", "altra"), "Neoverse-N1 (Graviton2, Ampere Altra)", {"graviton2", "altra"}),
)


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    label: str  # shown wherever a cost figure is: where the price came from, and its source and date


@dataclass(frozen=True)
class Instance:
    """One row of prices.csv. `name` is what `cost.instance` takes (provider/name); `family` is what a
    per-vCPU or per-GPU estimate is priced from; `cpu_key` groups CPU generations (sapphire-rapids, genoa...)."""

    name: str
    provider: str
    family: str
    vcpus: int
    memory_gib: float
    cpu_vendor: str
    cpu_family: str
    cpu_key: str
    gpu_count: int
    gpu_model: str
    gpu_memory_gib: float
    usd_per_hour: float
    region: str
    source: str
    as_of: str


def prices_path() -> str:
    return str(resources.files("inferarena.trackers") / PRICES)


@lru_cache(maxsize=1)
def instances() -> dict[str, Instance]:
    """The built-in price table, by instance name."""
    text = (resources.files("inferarena.trackers") / PRICES).read_text(encoding="utf-8")
    table = {}
    for row in csv.DictReader(text.splitlines()):
        table[row["instance"]] = Instance(
            name=row["instance"], provider=row["provider"], family=row["family"], vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]), cpu_vendor=row["cpu_vendor"], cpu_family=row["cpu_family"],
            cpu_key=row["cpu_key"], gpu_count=int(row["gpu_count"] or 0), gpu_model=row["gpu_model"],
            gpu_memory_gib=float(row["gpu_memory_gib"] or 0), usd_per_hour=float(row["usd_per_hour"]),
            region=row["region"], source=row["source"], as_of=row["as_of"])
    return table


def price(host: Host, instance: str | None = None, usd_per_hour: float | None = None, device: str = "cpu",
          gpus: Sequence[Gpu] = ()) -> Price:
    """The price a run's cost figures use: config first, then the named instance, then the default for
    this host (see the module docstring). `device`: the run's resolved device; `gpus`: the GPUs it sees."""
    if usd_per_hour is not None:
        return Price(usd_per_hour, f"${usd_per_hour:g}/h (from config)")
    table = instances()
    if instance is not None:
        if instance not in table:
            like = (difflib.get_close_matches(instance, table, n=3, cutoff=0.6)
                    or ["aws/c7i.large", "gcp/n2-standard-2", "azure/Standard_D2s_v5"])
            raise ConfigError(f"unknown instance {instance!r} for cost", f"use one like {', '.join(like)} (all "
                              f"{len(table)} are listed in {prices_path()}), or set cost.usd_per_hour")
        named = table[instance]
        return Price(named.usd_per_hour, f"{_quote(named)}; from cost.instance)")
    if device == "cuda" and gpus:
        return _gpu_default(list(table.values()), list(gpus))
    return _cpu_default(list(table.values()), host)


def cpu_class(host: Host) -> tuple[str | None, str | None, frozenset[str]]:
    """The host CPU's vendor (intel, amd, arm; x86 where only the flags say that much; else None), its family
    as a label says it, and the prices.csv `cpu_key`s of that family (empty where nothing tells the family)."""
    model, flags = host.cpu_model.lower(), host.flags
    if re.search(r"neoverse|graviton|ampere|altra|axion|cortex|aarch64|apple|\barm", model):
        for markers, family, keys in _ARM_FAMILIES:
            if any(m in model for m in markers):
                return "arm", family, frozenset(keys)
        return "arm", None, frozenset()
    if "intel" in model or "xeon" in model:
        if flags & {"amx_int8", "amx_bf16", "avx512_fp16"}:
            return "intel", "Sapphire Rapids or later", frozenset({"sapphire-rapids"})
        if "avx512f" in flags:
            return "intel", "Skylake to Ice Lake", frozenset({"skylake", "cascade-lake", "ice-lake"})
        return "intel", None, frozenset()
    if "amd" in model or "epyc" in model or "ryzen" in model:
        # EPYC model numbers end in the generation: 9xx4 Genoa, 9xx5 Turin, 7xx3 Milan, 7xx2 Rome.
        if "avx512_bf16" in flags or re.search(r"epyc \w{3}[45]\b", model):
            return "amd", "Zen 4 (Genoa) or later", frozenset({"genoa"})
        if "avx2" in flags or re.search(r"epyc \w{3}[123]\b", model):
            return "amd", "Zen 3 (Milan) or earlier", frozenset({"milan", "rome"})
        return "amd", None, frozenset()
    if flags & {"sse2", "avx", "avx2"}:  # a model string that names no vendor (a VM's "QEMU Virtual CPU")
        return "x86", None, frozenset()
    return None, None, frozenset()


def _cpu_default(table: list[Instance], host: Host) -> Price:
    n = max(1, host.logical_cores)
    vendor, family, keys = cpu_class(host)
    cpus = [i for i in table if not i.gpu_count]
    tiers = [(f"{VENDORS[vendor]} {family}", [i for i in cpus if i.cpu_key in keys])] if vendor and keys else []
    if vendor:
        tiers.append((VENDORS[vendor], [i for i in cpus if i.cpu_vendor in _ROW_VENDORS.get(vendor, {vendor})]))
    tiers.append(("", cpus))
    for rank, (what, pool) in enumerate(tiers):
        fitting = [i for i in pool if i.vcpus >= n]
        if not fitting:
            continue
        pick = min(fitting, key=lambda i: (i.usd_per_hour, i.name))
        if rank:  # a broader tier than the host's own
            why = f", as no built-in {tiers[rank - 1][0]} instance has that many"
        else:
            why = ", like this host" if vendor else f", as the CPU {host.cpu_model!r} names no vendor the table knows"
        return Price(pick.usd_per_hour, f"{_quote(pick)}; cheapest built-in {what + ' ' if what else ''}CPU "
                                        f"instance with {n}+ vCPUs{why}; {_FIX})")
    pool = next(pool for _, pool in tiers if pool)  # the host's own family where the table has it
    return _estimate(pool, n, "vCPU", _VCPUS, f"no built-in instance has {n}+ vCPUs")


def _gpu_default(table: list[Instance], gpus: list[Gpu]) -> Price:
    n, gpu = len(gpus), gpus[0]
    rows = [i for i in table if i.gpu_count]
    models = {i.gpu_model.upper(): i.gpu_model for i in rows}
    model = next((models[t] for t in re.split(r"[^A-Z0-9]+", gpu.name.upper()) if t in models), None)
    if model is not None:
        same = [i for i in rows if i.gpu_model == model]
        # An A100 80GB is not priced as a 40GB one (NVML reports a little under the nominal size).
        pool = [i for i in same if gpu.memory_gb <= i.gpu_memory_gib * 1.05] or same
        fitting = [i for i in pool if i.gpu_count >= n]
        if fitting:
            pick = min(fitting, key=lambda i: (i.usd_per_hour, i.name))
            return Price(pick.usd_per_hour, f"{_quote(pick)}; cheapest built-in instance with {n}+ {model} GPUs: "
                                            f"{pick.gpu_count}x {model} {pick.gpu_memory_gib:g} GB; {_FIX})")
        return _estimate(pool, n, "GPU", _GPUS, f"no built-in instance has {n}+ {model} GPUs")
    classes: dict[tuple[str, float], list[Instance]] = {}
    for i in rows:
        classes.setdefault((i.gpu_model, i.gpu_memory_gib), []).append(i)
    # Nearest in memory; between equals, the dearer per GPU, so that an unknown GPU is not priced low.
    (near_model, near_gb), pool = min(classes.items(), key=lambda c: (abs(c[0][1] - gpu.memory_gb),
                                                                      -_per_unit(_largest(c[1], _GPUS), _GPUS)))
    return _estimate(pool, n, "GPU", _GPUS, f"{gpu.name!r} ({gpu.memory_gb:g} GB) is not in the table, priced as "
                     f"the {near_model} {near_gb:g} GB, the nearest in memory")


def _estimate(pool: list[Instance], n: int, unit: str, units: Callable[[Instance], int], why: str) -> Price:
    top = _largest(pool, units)
    rate = _per_unit(top, units)
    return Price(rate * n, f"estimate: {n} {unit}{'s' if n > 1 else ''} × ${rate:.5g} per {unit}-hour of "
                           f"{top.family} = ${rate * n:.6g}/h (largest: {top.name} ${top.usd_per_hour:.10g}/h, "
                           f"{top.source}); {why}; {_FIX}")


def _largest(pool: list[Instance], units: Callable[[Instance], int]) -> Instance:
    return max(pool, key=lambda i: (units(i), -_per_unit(i, units), i.name))


def _per_unit(instance: Instance, units: Callable[[Instance], int]) -> float:
    return instance.usd_per_hour / units(instance)


def _quote(instance: Instance) -> str:
    """The start of a label, its parenthesis left open for the reason: name, price, source."""
    return f"{instance.name} ${instance.usd_per_hour:.10g}/h ({instance.source}"


def usd_per_million(price: Price, throughput_sps: float) -> float | None:
    if not throughput_sps or throughput_sps <= 0:
        return None
    return price.usd_per_hour / (throughput_sps * 3600.0) * 1e6
