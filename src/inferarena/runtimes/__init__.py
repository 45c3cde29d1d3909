"""Runtimes: one plugin file each, framework imported only inside `load`."""

from __future__ import annotations

from inferarena import registry
from inferarena.errors import ConfigError, RuntimeUnavailable
from inferarena.runtimes.base import Runtime


def get(name: str) -> type[Runtime]:
    if name not in registry.RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}", f"choose from {', '.join(registry.RUNTIMES)}")
    return registry.load(registry.RUNTIMES, name)


def require(name: str) -> type[Runtime]:
    """The runtime class, or a clear error naming the pip extra that installs it."""
    runtime = get(name)
    if not runtime.available():
        raise RuntimeUnavailable(f"runtime {name!r} is not installed", runtime.install_hint())
    return runtime
