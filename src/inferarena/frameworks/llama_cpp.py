"""llama.cpp through llama-cpp-python, as the runtime, the agents and the OpenAI server open it: the build's
CPU features, and whether weights go into llama.cpp's extra buffer types.

Extra buffer types are where the CPU backend keeps weights in a layout of its own: repacked Q4_0, Q4_K and
IQ4_NL blocks for its AVX2/AVX512/NEON kernels, and on builds with `AMX_INT8 = 1` (pip builds llama.cpp with
the host's native flags, so any Xeon with AMX) the AMX buffer for ggml_backend_amx_mul_mat. That AMX path
segfaults on the first decode of a quantized model (ggml-org/llama.cpp#20824; dspy removed its AMX CI job
for it), so by default (`auto`) extra buffers are off exactly where the build has AMX_INT8, and on
elsewhere. `on` keeps them for a llama.cpp whose AMX path works; `off` is llama.cpp's `--no-repack`.
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

EXTRA_BUFFERS = ("auto", "on", "off")
AMX_CRASH = "ggml-org/llama.cpp#20824"


@lru_cache(maxsize=1)
def system_info() -> str | None:
    """llama.cpp's own build report (`llama_print_system_info`): backends and CPU features compiled in (fixed
    for the process, so read once)."""
    try:
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    except Exception:  # noqa: BLE001 - informational only: no llama-cpp-python, or an old one
        return None


def build_features(info: str | None = None) -> dict[str, bool]:
    """The CPU features of the llama.cpp build as flags, e.g. {"AVX2": True, "AMX_INT8": True, ...}: what
    `system_info()` reports as `NAME = 1` (or `= 0`)."""
    info = system_info() if info is None else info
    return {name: value == "1" for name, value in re.findall(r"([A-Z][A-Z0-9_]*) = ([01])\b", info or "")}


def extra_buffers(setting: str = "auto", features: dict[str, bool] | None = None) -> tuple[bool, str]:
    """Whether weights go into the extra buffer types under `setting` (auto | on | off), and why, in words."""
    if setting not in EXTRA_BUFFERS:
        raise ValueError(f"extra_buffers is one of {', '.join(EXTRA_BUFFERS)}, not {setting!r}")
    if setting != "auto":
        return setting == "on", f"{setting} (asked)"
    features = build_features() if features is None else features
    if features.get("AMX_INT8"):
        return False, (f"off: this llama.cpp build has AMX_INT8, whose extra buffer crashes ({AMX_CRASH}); "
                       "extra_buffers=on keeps it")
    return True, "on (auto: no AMX in this build)"


def build_summary(setting: str = "auto", info: str | None = None) -> str:
    """One line for the environment card: the build's CPU features that are on, and the extra buffers."""
    features = build_features(info)
    on = [name for name, value in features.items() if value]
    return f"{' '.join(on) or 'no CPU features reported'}; extra buffers {extra_buffers(setting, features)[1]}"


@contextlib.contextmanager
def _without_extra_buffers() -> Iterator[None]:
    """Models loaded inside get `use_extra_bufts = False`: llama-cpp-python's `Llama` takes its model
    parameters from `llama_model_default_params()` and exposes no argument for this field."""
    import llama_cpp.llama_cpp as low

    default = low.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = default


def open_model(path: str | Path, setting: str = "auto", **kwargs: Any):
    """`llama_cpp.Llama(path, **kwargs)` with the extra buffers `setting` decides."""
    from llama_cpp import Llama

    use, _why = extra_buffers(setting)
    if use:
        return Llama(str(path), **kwargs)
    with _without_extra_buffers():
        return Llama(str(path), **kwargs)


def serve(argv: list[str]) -> None:
    """`python -m llama_cpp.server ARGS` with the extra buffers `--extra_buffers auto|on|off` decides (the
    server builds its `Llama` inside; this process exists only to serve)."""
    import runpy
    import sys

    setting = "auto"
    if "--extra_buffers" in argv:
        i = argv.index("--extra_buffers")
        setting, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    sys.argv = ["llama_cpp.server", *argv]
    if extra_buffers(setting)[0]:
        runpy.run_module("llama_cpp.server", run_name="__main__")
    else:
        with _without_extra_buffers():
            runpy.run_module("llama_cpp.server", run_name="__main__")


if __name__ == "__main__":
    import sys

    serve(sys.argv[1:])
