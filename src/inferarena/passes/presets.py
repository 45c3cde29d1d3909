"""Named pipelines for `--pipelines`: the common recipes, so nobody has to write YAML to try them.

They live in `inferarena.config` with the PipelineSpec they build (its default pipelines are presets);
this module keeps the names where the CLI and the serving bench import them.
"""

from __future__ import annotations

from inferarena.config import PRESET_RUNTIMES as RUNTIMES
from inferarena.config import PRESETS, preset

__all__ = ["PRESETS", "RUNTIMES", "preset"]
