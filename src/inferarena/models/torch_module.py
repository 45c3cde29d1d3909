"""The `torch_module` format: a weights file plus the builder that makes the nn.Module from it.

Bundled models that are not Hugging Face folders (EfficientNet-Lite0) come this way: the artifact's
path is the weights file, and `meta["builder"]` names "module:function", which takes that path and
returns the module in eval mode. `meta["inputs"]` gives each input's name, dtype and shape (a string
for the batch dimension), `meta["output_name"]` the one output.
"""

from __future__ import annotations

import importlib
from typing import Any

from inferarena.artifacts import Artifact


def build(artifact: Artifact, key: str = "builder") -> Any:
    """Call the builder named by `meta[key]` on the artifact's path."""
    module_name, _, attr = artifact.meta[key].partition(":")
    return getattr(importlib.import_module(module_name), attr)(artifact.path)


def input_names(artifact: Artifact) -> list[str]:
    return [spec["name"] for spec in artifact.meta["inputs"]]


def example_shape(spec: dict, batch: int) -> tuple[int, ...]:
    """An input's shape with its symbolic (batch) dimension set to `batch`."""
    return tuple(d if isinstance(d, int) and d > 0 else batch for d in spec["shape"])
