"""Passes: pure maps from an artifact to a new artifact at a path, cached by content hash."""

from __future__ import annotations

from inferarena import registry
from inferarena.errors import ModelError


def converter_for(source_format: str, wanted: tuple[str, ...]) -> str | None:
    """The registered pass that turns `source_format` into one of `wanted`, if any (by declaration only)."""
    for name in registry.PASSES:
        cls = registry.load(registry.PASSES, name)
        if source_format in cls.accepts and set(cls.produces) & set(wanted):
            return name
    return None


def route(source_format: str, wanted: tuple[str, ...]) -> str | None:
    """None if the runtime takes the source as is, else the name of the converting pass."""
    if source_format in wanted:
        return None
    name = converter_for(source_format, wanted)
    if name is None:
        raise ModelError(f"no pass converts {source_format} into {' or '.join(wanted)}", "pick another runtime")
    return name
