"""$ per 1M inferences = instance $/hour ÷ (throughput × 3600) × 1e6, at each scenario's throughput.

The price is the user's own figure (`cost.usd_per_hour`), a named instance from the table below
(`cost.instance`), or by default the table's cheapest CPU instance with at least as many vCPUs as
this host, and every output says which price was used.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferarena.errors import ConfigError
from inferarena.hardware import Host

# name: (USD per hour, vCPUs, accelerator, source). On-demand Linux list prices as published in 2024;
# check the provider's current price list before relying on them.
PRICE_TABLE: dict[str, tuple[float, int, str | None, str]] = {
    "aws/c7i.large": (0.08925, 2, None, "AWS EC2 on-demand, us-east-1, 2024"),
    "aws/m7i.large": (0.1008, 2, None, "AWS EC2 on-demand, us-east-1, 2024"),
    "aws/m7i.xlarge": (0.2016, 4, None, "AWS EC2 on-demand, us-east-1, 2024"),
    "aws/c7i.2xlarge": (0.357, 8, None, "AWS EC2 on-demand, us-east-1, 2024"),
    "gcp/n2-standard-2": (0.097118, 2, None, "Google Compute Engine on-demand, us-central1, 2024"),
    "aws/g5.xlarge": (1.006, 4, "1x NVIDIA A10G", "AWS EC2 on-demand, us-east-1, 2024"),
}


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    label: str  # shown wherever a cost figure is


def price(host: Host, instance: str | None = None, usd_per_hour: float | None = None) -> Price:
    if usd_per_hour is not None:
        return Price(usd_per_hour, f"${usd_per_hour:g}/h (from config)")
    if instance is not None:
        if instance not in PRICE_TABLE:
            raise ConfigError(f"unknown instance {instance!r} for cost", f"use one of {', '.join(PRICE_TABLE)} "
                              "or set cost.usd_per_hour")
        usd, _, _, source = PRICE_TABLE[instance]
        return Price(usd, f"{instance} ${usd:g}/h ({source})")
    fitting = [(usd, name) for name, (usd, vcpus, gpu, _) in PRICE_TABLE.items()
               if gpu is None and vcpus >= host.logical_cores]
    if not fitting:
        raise ConfigError(f"no built-in CPU instance has {host.logical_cores} vCPUs", "set cost.usd_per_hour")
    usd, name = min(fitting)
    return Price(usd, f"{name} ${usd:g}/h ({PRICE_TABLE[name][3]}; cheapest built-in with "
                      f"{host.logical_cores}+ vCPUs, set cost.instance or cost.usd_per_hour)")


def usd_per_million(price: Price, throughput_sps: float) -> float | None:
    if not throughput_sps or throughput_sps <= 0:
        return None
    return price.usd_per_hour / (throughput_sps * 3600.0) * 1e6
