"""torchao, as the torchao_quantize pass writes a recipe and the torch runtime replays it on load:
the recipe file, applying it to a module, and the import (quiet, or a clear install hint).

See passes/torchao_quant.py for why the pass stores a recipe rather than quantized weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferarena.errors import ConfigError, ModelError, RuntimeUnavailable

RECIPE = "torchao.json"
RECIPE_VERSION = 1
INSTALL = "pip install torchao (with the torch you already have: pip install -c constraints.txt torchao)"


def read_recipe(folder: Path) -> dict[str, Any] | None:
    """The torchao recipe a folder carries, if any: what the torch runtime checks on load."""
    path = folder / RECIPE
    return json.loads(path.read_text()) if path.is_file() else None


def refuse_export(folder: Path, what: str) -> None:
    """A pass that rewrites the model for another runtime would silently drop a torchao recipe: refuse."""
    if (Path(folder) / RECIPE).is_file():
        raise ConfigError(f"torchao quantization exists only in torch, and {what} would drop it",
                          "put torchao_quantize last and run it on torch/transformers, or drop the other runtimes")


def weight_bytes(module: Any) -> int:
    """Bytes of a module's parameters as stored: a torchao tensor counts its int8 data and scales."""
    from torchao.utils import TorchAOBaseTensor

    total = 0
    for p in module.parameters():
        if isinstance(p, TorchAOBaseTensor):
            total += sum(getattr(p, n).numel() * getattr(p, n).element_size() for n in p.tensor_data_names)
        else:
            total += p.numel() * p.element_size()
    return total


def apply_recipe(module: Any, recipe: dict[str, Any]) -> tuple[int, int]:
    """Quantize `module`'s Linear layers in place; returns (Linear layers, layers quantized)."""
    import torch

    import_torchao()
    from torchao.core.config import config_from_dict
    from torchao.quantization import quantize_
    from torchao.utils import TorchAOBaseTensor

    if recipe.get("version") != RECIPE_VERSION:
        raise ModelError(f"torchao recipe version {recipe.get('version')} is not {RECIPE_VERSION}",
                         "rebuild the model with the torchao_quantize pass")
    try:
        quantize_(module, config_from_dict(recipe["torchao_config"]))
    except (AssertionError, ValueError, NotImplementedError, RuntimeError, ImportError) as exc:
        raise ConfigError(f"torchao cannot apply {recipe['scheme']} here: {str(exc).splitlines()[0][:200]}",
                          "pick another scheme (or a group_size that divides every layer's width)") from None
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return len(linears), sum(isinstance(m.weight, TorchAOBaseTensor) for m in linears)


def _torchao_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchao") is not None


def import_torchao() -> None:
    """Import torchao, or say how to install it. Its import logs a warning per CUDA-only extension
    it cannot load (harmless on CPU), so its logger is quieted for the import."""
    import logging

    if not _torchao_installed():
        raise RuntimeUnavailable("torchao is not installed", INSTALL)
    logger = logging.getLogger("torchao")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torchao  # noqa: F401
    except Exception as exc:  # e.g. a torchao built against another torch
        raise RuntimeUnavailable(f"torchao does not import: {str(exc).splitlines()[0][:200]}", INSTALL) from None
    finally:
        logger.setLevel(level)
