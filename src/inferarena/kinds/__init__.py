"""Kinds of model (predict, generate): each declares its scenarios, jobs, profiles, report and serving."""

from __future__ import annotations

from inferarena import registry
from inferarena.errors import ConfigError
from inferarena.kinds.base import Kind


def get(name: str) -> Kind:
    if name not in registry.KINDS:
        raise ConfigError(f"unknown kind of model {name!r}", f"choose from {', '.join(registry.KINDS)}")
    return registry.load(registry.KINDS, name)()


def of_artifact(artifact) -> Kind:
    """The kind a model source declared in its meta (predict when it says nothing)."""
    return get(artifact.meta.get("kind", "predict"))


def of_run(run) -> Kind:
    return get(run.kind)
