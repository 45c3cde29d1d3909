"""Where OpenVINO's time goes on this CPU: the per-op profile (PERF_COUNT) of MiniLM in INT8 and BF16.

It builds (or reuses from the cache) inferarena's `nncf-int8` IR and its FP32 ONNX export, compiles
each as the throughput pick runs it (THROUGHPUT hint, AsyncInferQueue, the corpus sorted by length
and cut into batches of `--batch`), and sums every executed node's real time over `--passes` passes:
- INT8: the `nncf-int8` IR, with the plugin's own precision for the ops left in floating point;
- BF16: the FP32 export at INFERENCE_PRECISION_HINT=bf16 (only where the CPU has native BF16; with
  `--all-precisions`, anyway), and FP32 beside it with `--all-precisions`.

For each it prints a table by node type and the kernel that ran it (`exec_type`, e.g.
`brgemm_avx512_amx_I8`, `jit_avx512_I8`, `ref_any_f32`), with the share of the time, and the
share of the GEMM nodes (FullyConnected, MatMul, Convolution) against the rest. A kernel named
`ref` or `any` is a slow reference path; `amx` in a name means AMX tiles ran it.

Run: .venv/bin/python bench/ov_profile.py [--batch 16] [--passes 3] [--top 14] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

GEMM_TYPES = {"FullyConnected", "MatMul", "Convolution", "GroupConvolution", "Gemm"}


def artifact_of(pipeline: str, cwd: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "inferarena", "optimize", "minilm", "--pipeline", pipeline],
                          cwd=cwd, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", **_env()})
    if done.returncode != 0:
        sys.exit(f"inferarena optimize minilm --pipeline {pipeline} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return Path(re.search(r"Artifact \(\w+\): (\S+)", done.stdout).group(1))


def _env() -> dict:
    import os

    return {**os.environ, "COLUMNS": "200"}


def profile(model_path: Path, precision: str | None, batches, passes: int) -> tuple[dict, float, int]:
    """Summed real time (ms) per (node type, exec type), the wall seconds and the samples served."""
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "PERF_COUNT": True}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(core.read_model(str(model_path)), "CPU", config)
    queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    totals: dict[tuple[str, str], float] = defaultdict(float)
    counting = [False]

    def collect(request, _):
        if counting[0]:
            for node in request.profiling_info:
                if node.status == ov.ProfilingInfo.Status.EXECUTED:
                    totals[(node.node_type, node.exec_type)] += node.real_time.total_seconds() * 1e3

    queue.set_callback(collect)
    for batch in batches:  # warm-up: every shape compiled once
        queue.start_async(batch)
    queue.wait_all()
    counting[0] = True
    start = time.perf_counter()
    for _ in range(passes):
        for batch in batches:
            queue.start_async(batch)
        queue.wait_all()
    samples = passes * sum(len(next(iter(b.values()))) for b in batches)
    return dict(totals), time.perf_counter() - start, samples


def table(title: str, totals: dict, seconds: float, samples: int, top: int) -> None:
    whole = sum(totals.values())
    gemm = sum(ms for (node, _), ms in totals.items() if node in GEMM_TYPES)
    print(f"\n### {title}\n")
    print(f"{samples / seconds:,.0f} samples/s while profiled; node time {whole / samples:.3f} ms per sample "
          f"(summed over streams); GEMM nodes {100 * gemm / whole:.1f} %, the rest {100 * (1 - gemm / whole):.1f} %\n")
    print("| node type | kernel (exec_type) | ms per sample | share |")
    print("|---|---|---:|---:|")
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    for (node, kernel), ms in ranked[:top]:
        print(f"| {node} | {kernel} | {ms / samples:.4f} | {100 * ms / whole:.1f} % |")
    rest = sum(ms for _, ms in ranked[top:])
    if rest:
        print(f"| {len(ranked) - top} others | | {rest / samples:.4f} | {100 * rest / whole:.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="Samples per batch (the pick's batch).")
    parser.add_argument("--passes", type=int, default=3, help="Profiled passes over the corpus.")
    parser.add_argument("--top", type=int, default=14, help="Rows per table; the rest are summed.")
    parser.add_argument("--all-precisions", action="store_true", help="BF16 even without native BF16, and FP32.")
    parser.add_argument("--work", type=Path, help="Folder to run in (default: a temporary one).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ov-profile-"))
    work.mkdir(parents=True, exist_ok=True)

    from inferarena import models, workloads
    from inferarena.config import GenerationConfig, ShapeStrategy, WorkloadConfig
    from inferarena.hardware import host

    h = host()
    print(f"CPU: {h.cpu_model}, {h.logical_cores} logical cores · AMX {'yes' if h.has_amx else 'no'} · native BF16 "
          f"{'yes' if h.has_bf16 else 'no'} · VNNI {'yes' if 'avx512_vnni' in h.flags else 'no'}")
    import openvino as ov

    print(f"OpenVINO {ov.get_version()}; MiniLM, default corpus sorted by length, batches of {args.batch}, "
          f"THROUGHPUT hint, {args.passes} profiled passes")
    ir = artifact_of("nncf-int8", work)
    fp32 = Path(json.loads((ir.parent / "artifact.json").read_text())["meta"]["flops_source"])
    workload = workloads.build(models.resolve("minilm"), WorkloadConfig(), GenerationConfig())
    order = sorted(range(len(workload)), key=workload.length)
    batches = [workload.collate(order[i : i + args.batch], ShapeStrategy.dynamic)
               for i in range(0, len(order), args.batch)]
    runs = [("INT8: nncf-int8 IR, floating-point ops at the plugin's choice", ir, None)]
    if h.has_bf16 or args.all_precisions:
        runs.append(("BF16: the FP32 export at INFERENCE_PRECISION_HINT=bf16", fp32, "bf16"))
    if args.all_precisions:
        runs.append(("FP32: the FP32 export at INFERENCE_PRECISION_HINT=f32", fp32, "f32"))
    for title, path, precision in runs:
        table(title, *profile(path, precision, batches, args.passes), args.top)


if __name__ == "__main__":
    main()
