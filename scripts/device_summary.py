"""The GPU check's figures side by side (issue 22's targets), from the runs' --json documents and the peak:
% of the BF16 GEMM peak of the best Offline variant, b1 p50 latency eager against torch.compile
reduce-overhead, and J per 1,000 sequences (measured, NVML) for eager FP32, compiled BF16 and FP8.
Prints them and writes summary.json; a figure that is missing stays None, never a guess.

Example: python scripts/device_summary.py --runs out/leaderboard.json out/compiled.json --peak out/peak.json --out out/summary.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _row(v: dict) -> dict:
    m = v.get("metrics") or {}
    j = m.get("offline.energy_j_per_query")
    return {"name": v["name"], "status": v["status"], "error": (v.get("error") or "")[:300] or None,
            "precision": v["precision"], "compile": (v.get("knobs") or {}).get("compile", "none"),
            "pipeline": v.get("pipeline"), "device": (v.get("session_info") or {}).get("device"),
            "b1_latency_ms_p50": m.get("single_stream.latency_ms_p50"),
            "offline_sequences_per_s": m.get("offline.throughput_sps"),
            "offline_gflops_per_s": m.get("offline.gflops_per_s"), "offline_pct_of_peak": m.get("offline.pct_of_peak"),
            "j_per_1000_sequences": j * 1000 if j is not None else None,
            "energy_source": m.get("offline.energy_source"), "energy_basis": m.get("offline.energy_basis"),
            "gpu_util_pct_avg": m.get("offline.gpu_util_pct_avg"),
            "gpu_sm_util_pct_avg": m.get("offline.gpu_sm_util_pct_avg"),
            "gpu_mem_used_mb_peak": m.get("offline.gpu_mem_used_mb_peak")}


def _pick(rows: list[dict], precision: str, compiled: bool | None) -> dict | None:
    for row in rows:
        if row["status"] == "ok" and row["precision"] == precision and (
                compiled is None or (row["compile"] != "none") == compiled):
            return row
    return None


def summarize(runs: list[dict], peak: dict | None) -> dict:
    rows = [_row(v) for run in runs for v in run.get("variants", [])]
    env = next((run.get("environment") or {} for run in runs), {})
    peaks = env.get("gemm_peak_gflops") or (peak or {}).get("gflops") or {}
    bf16_peak = peaks.get("bf16")
    ok = [r for r in rows if r["status"] == "ok"]
    best = max((r for r in ok if r["offline_gflops_per_s"]), key=lambda r: r["offline_gflops_per_s"], default=None)
    eager_bf16, compiled_bf16 = _pick(rows, "bf16", False), _pick(rows, "bf16", True)
    fp8 = _pick(rows, "fp8", True) or _pick(rows, "fp8", False)
    eager_fp32 = _pick(rows, "fp32", False)
    pct_bf16 = (100.0 * best["offline_gflops_per_s"] / bf16_peak) if best and bf16_peak else None

    def b1(row):
        return row["b1_latency_ms_p50"] if row else None

    def joules(row):
        return {"variant": row["name"], "j": row["j_per_1000_sequences"], "source": row["energy_source"]} if row else None

    return {
        "gpu": (env.get("gpus") or [None])[0], "device": env.get("device"), "gemm_peak_gflops": peaks,
        "hbm": (peak or {}).get("hbm"), "variants": rows,
        "targets": {
            "best_offline_vs_bf16_peak": {"variant": best["name"] if best else None, "pct_of_bf16_peak": pct_bf16,
                                          "met_50_pct": pct_bf16 >= 50 if pct_bf16 is not None else None},
            "b1_latency_ms_p50": {"eager_bf16": b1(eager_bf16), "compiled_reduce_overhead_bf16": b1(compiled_bf16),
                                  "eager_over_compiled": (b1(eager_bf16) / b1(compiled_bf16))
                                  if b1(eager_bf16) and b1(compiled_bf16) else None},
            "j_per_1000_sequences": {"eager_fp32": joules(eager_fp32), "compiled_bf16": joules(compiled_bf16),
                                     "fp8": joules(fp8)},
        },
        "energy_source_nvml_on_every_ok_variant": bool(ok) and all(r["energy_source"] == "nvml" for r in ok),
        "failed": [f"{r['name']}: {r['error']}" for r in rows if r["status"] != "ok"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--peak", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = [r for r in (_load(p) for p in args.runs) if r]
    summary = summarize(runs, _load(args.peak) if args.peak else None)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("gpu", "gemm_peak_gflops", "hbm", "targets",
                                              "energy_source_nvml_on_every_ok_variant", "failed")}, indent=1))


if __name__ == "__main__":
    main()
