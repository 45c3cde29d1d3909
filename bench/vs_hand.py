"""inferarena's picks against hand-written best-practice loops on MiniLM, side by side in one run.

What it times, on the default corpus (512 stdlib docstring paragraphs) and this machine:
1. hand loops, the way an engineer who knows the runtime would write them: samples sorted by length,
   each batch padded to its own longest, batches of 8/16/32/64 (the best is kept):
   - OpenVINO on inferarena's own `nncf-int8` IR, AsyncInferQueue with the THROUGHPUT hint;
   - ONNX Runtime on `int8-dynamic` (quantize_dynamic), one session, and two threads on one session;
2. `inferarena search --profile throughput --min-cos 0.99 --quick` with its defaults; the pick is then
   reproduced with `inferarena run --config <the pick's YAML>` between two rounds of the hand loops;
3. `inferarena search --profile latency --min-cos 0.99 --quick`, then the latency pick's SingleStream
   p50 through the harness against a hand-written synchronous loop on the same artifact and shapes,
   alternating.
It prints a table and three ratios against the targets (met / NOT met):
- throughput: the pick ÷ the best hand loop >= 1.2;
- roofline: the pick's useful_pct_of_peak >= 60 %, against the INT8 GEMM peak `inferarena peak --refresh`
  measures at the start of this run;
- latency: the pick's SingleStream p50 within 10 % of the hand synchronous loop.

The hand loops do not meet the fidelity bound themselves (plain nncf-int8 reaches cos_min 0.98995 here);
the picks must. Run: .venv/bin/python bench/vs_hand.py [--seconds 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "inferarena"]
BATCHES = (8, 16, 32, 64)
THROUGHPUT_TARGET, ROOFLINE_TARGET_PCT, LATENCY_TOLERANCE_PCT = 1.2, 60.0, 10.0


def cli(*args: str, cwd: Path) -> str:
    """One inferarena command as a user types it; its output, or the run stops with it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"inferarena {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def artifact_of(pipeline: str, cwd: Path) -> Path:
    out = cli("optimize", "minilm", "--pipeline", pipeline, cwd=cwd)
    return Path(re.search(r"Artifact \(\w+\): (\S+)", out).group(1))


def corpus():
    """The default workload, tokenized as inferarena tokenizes it (the loops below do their own batching)."""
    from inferarena import models, workloads
    from inferarena.config import GenerationConfig, WorkloadConfig

    return workloads.build(models.resolve("minilm"), WorkloadConfig(), GenerationConfig())


def sorted_batches(workload, size: int) -> list[dict[str, np.ndarray]]:
    """Sorted by length, cut into batches of `size`, each padded to its own longest (the workload's
    `dynamic` collation: the same arrays inferarena feeds the runtime)."""
    from inferarena.config import ShapeStrategy

    order = sorted(range(len(workload)), key=workload.length)
    return [workload.collate(order[i : i + size], ShapeStrategy.dynamic) for i in range(0, len(order), size)]


def timed_passes(run_pass, samples: int, seconds: float) -> float:
    """Samples/s over whole passes of the corpus, after one untimed pass (every shape seen once)."""
    run_pass()
    passes, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_pass()
        passes += 1
    return passes * samples / (time.perf_counter() - start)


def hand_openvino(xml: Path, workload, seconds: float) -> dict[str, float]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    out = {}
    for size in BATCHES:
        batches = sorted_batches(workload, size)

        def run_pass():
            for batch in batches:
                queue.start_async(batch)
            queue.wait_all()

        out[f"b{size}"] = timed_passes(run_pass, len(workload), seconds)
    return out


def hand_onnxruntime(onnx: Path, workload, seconds: float) -> dict[str, float]:
    import onnxruntime as ort

    cores = os.cpu_count() or 1
    out = {}
    for streams in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, cores // streams)
        session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        for size in BATCHES:
            batches = sorted_batches(workload, size)
            if streams == 1:
                def run_pass():
                    for batch in batches:
                        session.run(None, batch)
            else:
                def run_pass():
                    def worker(part):
                        for batch in part:
                            session.run(None, batch)
                    threads = [threading.Thread(target=worker, args=(batches[i::streams],)) for i in range(streams)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
            out[f"{streams} stream{'s' if streams > 1 else ''}, b{size}"] = timed_passes(run_pass, len(workload), seconds)
    return out


def hand_sync_p50(variant: dict, workload, seconds: float) -> tuple[float, str]:
    """SingleStream by hand: one sample at a time, in random order, shaped as the pick shapes them, through
    the runtime's own API (OpenVINO, ONNX Runtime); other runtimes through inferarena's session."""
    from inferarena.config import ShapeStrategy

    strategy = ShapeStrategy(variant["shape"])
    rng = np.random.default_rng(0)
    samples = [workload.collate([int(i)], strategy) for i in rng.permutation(len(workload))]
    path = variant["lineage"][-1]["output"] if variant["lineage"] else None
    knobs = variant["knobs"]
    if variant["runtime"] == "openvino":
        import openvino as ov

        core = ov.Core()
        model = core.read_model(path)
        if strategy is ShapeStrategy.fixed and knobs.get("static_shapes", True):
            model.reshape({p.get_any_name(): ov.PartialShape([1, workload.max_length]) for p in model.inputs})
        precision = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}.get(variant["precision"], "f32")
        config = {"PERFORMANCE_HINT": knobs.get("performance_hint", "LATENCY"),
                  "INFERENCE_NUM_THREADS": knobs.get("threads") or os.cpu_count()}
        if knobs.get("pinning") is not None:  # the pick's own pinning, so that only the harness differs
            config["ENABLE_CPU_PINNING"] = knobs["pinning"]
        if knobs.get("streams"):
            config["NUM_STREAMS"] = knobs["streams"]
        if variant["precision"] in ("fp32", "bf16", "fp16"):
            config["INFERENCE_PRECISION_HINT"] = precision
        request = core.compile_model(model, "CPU", config).create_infer_request()
        call, how = request.infer, "OpenVINO infer request"
    elif variant["runtime"] == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = knobs.get("threads") or os.cpu_count()
        if knobs.get("graph_optimization_level") == "basic":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if knobs.get("allow_spinning", True) else "0")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        call, how = (lambda batch: session.run(None, batch)), "ONNX Runtime session.run"
    else:
        from inferarena import models, runtimes
        from inferarena.artifacts import Artifact

        runtime = runtimes.get(variant["runtime"])()
        if path:  # a pass output: its folder's artifact.json says what it is
            stored = json.loads((Path(path).parent / "artifact.json").read_text())
            artifact = Artifact(Path(path), stored["format"], stored["meta"], tuple(stored.get("lineage", ())))
        else:
            artifact = models.resolve("minilm")
        session = runtime.load(artifact, variant["precision"], runtime.validate_knobs(knobs),
                               workload.input_shapes(strategy))
        call, how = session.predict, f"inferarena's {variant['runtime']} session, bare loop"
    for batch in samples[:20]:
        call(batch)
    times, start, i = [], time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        begin = time.perf_counter_ns()
        call(samples[i % len(samples)])
        times.append(time.perf_counter_ns() - begin)
        i += 1
    return float(np.median(times)) / 1e6, how


def search(profile: str, work: Path) -> dict:
    out = work / f"search-{profile}.json"
    cli("search", "--profile", profile, "--min-cos", "0.99", "--quick", "--json", str(out), "--no-report",
        "--db", str(work / f"{profile}.db"), cwd=work)
    return json.loads(out.read_text())


def reproduce(config: str, scenario: str, work: Path, tag: str, quick_ms: int | None = None) -> dict:
    """The pick measured again from its stored config, as the recommendation's Reproduce line says.
    With `quick_ms`, the copy measures for that long (the search's quick budget is short and noisy)."""
    out = work / f"{tag}.json"
    if quick_ms:
        import yaml

        doc = yaml.safe_load(Path(config).read_text())
        doc.setdefault("loadgen", {})["quick_duration_ms"] = quick_ms
        config = str(work / f"{tag}.yaml")
        Path(config).write_text(yaml.safe_dump(doc, sort_keys=False))
    cli("run", "--config", config, "--scenarios", scenario, "--json", str(out), "--no-report",
        "--db", str(work / f"{tag}.db"), cwd=work)
    return json.loads(out.read_text())["variants"][0]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="Timed seconds per hand-loop setting.")
    parser.add_argument("--work", type=Path, help="Folder for the databases and JSON (default: a temporary one).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vs-hand-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    peak_text = cli("peak", "--refresh", cwd=work)
    int8_peak = float(re.search(r"int8\W+([\d,]+) GOP/s", peak_text).group(1).replace(",", ""))
    print(f"INT8 GEMM peak (inferarena peak --refresh): {int8_peak:,.0f} GOP/s", flush=True)
    ov_ir, ort_int8 = artifact_of("nncf-int8", work), artifact_of("int8-dynamic", work)
    workload = corpus()

    def hand_round() -> dict[str, dict[str, float]]:
        return {"OpenVINO nncf-int8, AsyncInferQueue THROUGHPUT": hand_openvino(ov_ir, workload, args.seconds),
                "ONNX Runtime int8-dynamic": hand_onnxruntime(ort_int8, workload, args.seconds)}

    first = hand_round()
    print("hand loops, round 1 done", flush=True)
    doc = search("throughput", work)
    rec = doc["recommendation"]
    if not rec.get("variant"):
        sys.exit(f"the throughput search picked nothing: {rec.get('explanation')}")
    searched = next(v for v in doc["variants"] if v["name"] == rec["variant"])
    print(f"throughput pick: {rec['variant']}", flush=True)
    # As long as the hand loops time all their settings, so that the figure is as steady as theirs.
    again = reproduce(rec["config_path"], "offline", work, "throughput-pick", quick_ms=int(4000 * args.seconds))
    second = hand_round()

    rows = []
    for loop in first:
        for setting in first[loop]:
            rows.append((loop, setting, first[loop][setting], second[loop][setting]))
    best_loop = max(rows, key=lambda r: max(r[2], r[3]))
    best_hand = max(best_loop[2], best_loop[3])
    pick_sps = again["metrics"]["offline.throughput_sps"]
    pick_useful = again["metrics"].get("offline.useful_pct_of_peak")
    # The roofline figure against the INT8 peak measured above, whatever the pick's precision.
    useful_gops = again["metrics"].get("offline.useful_gflops_per_s")
    useful_vs_int8 = 100.0 * useful_gops / int8_peak if useful_gops else None

    print("\n| setup | setting | round 1 samples/s | round 2 samples/s |")
    print("|---|---|---:|---:|")
    for loop, setting, a, b in rows:
        print(f"| hand: {loop} | {setting} | {a:,.0f} | {b:,.0f} |")
    print(f"| inferarena search pick: {rec['variant']} | in the search (quick, its rounds) | "
          f"{searched['metrics']['offline.throughput_sps']:,.0f} | |")
    print(f"| the same pick, `inferarena run --config` between the hand rounds | Offline, quick, {4 * args.seconds:g} s | {pick_sps:,.0f} | |")
    useful_gflop = again["metrics"].get("offline.useful_gflops_per_query")

    latency_doc = search("latency", work)
    lrec = latency_doc["recommendation"]
    lpick = next(v for v in latency_doc["variants"] if v["name"] == lrec["variant"])
    harness, hand = [], []
    for r in range(2):
        hand_p50, how = hand_sync_p50(lpick, workload, args.seconds)
        hand.append(hand_p50)
        measured = reproduce(lrec["config_path"], "single_stream", work, f"latency-pick-{r}")
        harness.append(measured["metrics"]["single_stream.latency_ms_p50"])
    print(f"| latency pick: {lrec['variant']} | SingleStream p50 through LoadGen, 2 runs | "
          f"{harness[0]:.3f} ms | {harness[1]:.3f} ms |")
    print(f"| hand synchronous loop ({how}) | same artifact, shapes, threads | {hand[0]:.3f} ms | {hand[1]:.3f} ms |")

    ratio = pick_sps / best_hand
    lat_pct = 100.0 * (np.mean(harness) / np.mean(hand) - 1)
    print(f"\nbest hand loop: {best_loop[0]}, {best_loop[1]}: {best_hand:,.0f} samples/s")
    print(f"throughput: pick ÷ best hand loop = {pick_sps:,.0f} / {best_hand:,.0f} = {ratio:.2f}x "
          f"(target >= {THROUGHPUT_TARGET}x): {verdict(ratio >= THROUGHPUT_TARGET)}")
    if useful_gflop:  # the same model's useful FLOPs per sample, counted by inferarena; the loop's rate
        hand_pct = 100.0 * best_hand * useful_gflop / int8_peak
        print(f"the best hand loop's useful work at {useful_gflop:.3f} GFLOP per sample (inferarena's count): "
              f"{best_hand * useful_gflop:,.0f} GOP/s = {hand_pct:.1f} % of the INT8 peak")
    shown = "-" if useful_vs_int8 is None else f"{useful_vs_int8:.1f} %"
    print(f"roofline: pick's useful work {useful_gops or 0:,.0f} GOP/s = {shown} of the INT8 peak "
          f"{int8_peak:,.0f} GOP/s (its own precision's: {pick_useful if pick_useful is None else round(pick_useful, 1)} %) "
          f"(target >= {ROOFLINE_TARGET_PCT:g} %): {verdict(useful_vs_int8 is not None and useful_vs_int8 >= ROOFLINE_TARGET_PCT)}")
    print(f"latency: pick's SingleStream p50 {np.mean(harness):.3f} ms vs hand loop {np.mean(hand):.3f} ms = "
          f"{lat_pct:+.1f} % (target within {LATENCY_TOLERANCE_PCT:g} %): {verdict(abs(lat_pct) <= LATENCY_TOLERANCE_PCT)}")
    print(f"({time.perf_counter() - t0:.0f} s; databases and JSON in {work})")


if __name__ == "__main__":
    main()
