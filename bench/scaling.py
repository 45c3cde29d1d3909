"""Scale-out on paper, from figures measured here (issue 21): what a 1,000-candidate sweep would take on
1, 10 and 100 nodes with `--launcher ray` and a shared PostgreSQL store, and what saturates first.

Measured on this machine, each part with a real Ray and a real PostgreSQL (started and stopped here,
by the ids they were started with):
- ray:      Ray's own per-task cost (a no-op task, submitted and awaited one at a time, and many in
            flight), and what a measurement round pays for Ray (the launcher's lane: a Ray task that
            starts the job's fresh process) over the same fresh process started here.
- store:    variants stored per second (`save_variant`, one transaction each, with 4 scenarios of
            2,000 latencies each), SQLite and PostgreSQL, 1 and 4 writer processes at once.
- transfer: an artifact's trip between nodes: 100 MB through Ray's object store from one node to the
            other (a two-node cluster on loopback), and a copy through the file system (what a shared
            cache folder costs at best on this disk).
- builds:   MiniLM's two default INT8 pipelines (int8-dynamic-ac, nncf-int8), each from an empty cache.
- sweep:    the same small sweep (an ONNX MLP, 3 variants, 2 rounds) with `--launcher spawn` and
            `--launcher ray` on the two-node cluster: wall time, and the seconds a variant takes.

The projection (printed, and in bench-out/scaling/scaling.json) is arithmetic on those figures; the
formulas are in `project` and docs/scaling.md. Run:

    .venv/bin/python bench/scaling.py [--parts ray,store,transfer,sweep] [--variant-s S] [--builds N --build-s S]

About 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import operator
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's real-service helpers: PostgreSQL, a Ray cluster

from services import RAY_ENV, postgres_server, ray_cluster  # noqa: E402


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# -- Ray ----------------------------------------------------------------------------------------------

def part_ray() -> dict:
    import ray

    from inferarena import launchers

    out: dict = {}
    launcher = launchers.get("ray")  # Ray on this machine, one node, as `--launcher ray` with no address
    try:
        @ray.remote  # one CPU: Ray reuses its worker processes, as it does for builds
        def noop():
            return None

        ray.get(noop.remote())
        n = 300
        start = time.perf_counter()
        for _ in range(n):
            ray.get(noop.remote())
        out["noop_task_round_trip_ms"] = round((time.perf_counter() - start) / n * 1000, 2)
        start = time.perf_counter()
        ray.get([noop.remote() for _ in range(2000)])
        out["noop_tasks_per_s_in_flight"] = round(2000 / (time.perf_counter() - start))
        lane = launcher.lane()
        lane.run(operator.add, (1, 2), 60)  # the worker process exists from here on
        ray_rounds = [timed(lane.run, operator.add, (1, 2), 60) for _ in range(8)]
    finally:
        launcher.close()
    from inferarena.launchers.ray import _no_main_script
    from inferarena.worker import run_isolated

    spawn = launchers.get("spawn")
    # `spawn` from this script: its child runs this script again first (multiprocessing's spawn does), as
    # the CLI's child imports the CLI. The same fresh process without that is the job's own floor.
    spawn_rounds = [timed(spawn.run, operator.add, (1, 2), 60) for _ in range(8)]
    with _no_main_script():
        bare_rounds = [timed(run_isolated, operator.add, (1, 2), 60) for _ in range(8)]
    out["spawn_round_s"] = round(float(np.median(spawn_rounds)), 3)
    out["bare_process_round_s"] = round(float(np.median(bare_rounds)), 3)
    out["ray_lane_round_s"] = round(float(np.median(ray_rounds)), 3)
    out["ray_overhead_per_round_s"] = round(out["ray_lane_round_s"] - out["bare_process_round_s"], 3)
    return out


# -- store --------------------------------------------------------------------------------------------

def _variant(name: str):
    from inferarena.results import ScenarioResult, VariantResult, VariantSpec

    spec = VariantSpec(name=name, runtime="onnxruntime", precision="fp32", shape="fixed", knobs={"threads": 2})
    rng = np.random.default_rng(0)
    scenarios = {s: ScenarioResult(s, True, None, "quick", {"latency_ms_p90": 1.0, "throughput_sps": 100.0},
                                   {"result_validity": "VALID"}, rng.gamma(4, 0.3, 2000), [1000, 1000])
                 for s in ("single_stream", "multi_stream", "server", "offline")}
    return VariantResult.of(spec, fidelity={"cos_min": 1.0}, scenarios=scenarios,
                            node={"hostname": "h", "cpu_model": "c", "logical_cores": 2, "node_id": "n"})


def _writer(db: str, count: int, start, queue) -> None:
    from inferarena.store import open_store

    store = open_store(db)
    run_id = store.create_run({}, "bench", "m", True, {}, {}, [])
    variants = [_variant(f"v{i}") for i in range(count)]
    start.wait()
    began = time.perf_counter()
    for v in variants:
        store.save_variant(run_id, v)
    queue.put((began, time.perf_counter()))
    store.close()


def write_rate(db: str, writers: int, per_writer: int) -> float:
    from inferarena.store import open_store

    open_store(db).close()
    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(writers), context.Queue()
    processes = [context.Process(target=_writer, args=(db, per_writer, start, queue)) for _ in range(writers)]
    for p in processes:
        p.start()
    spans = [queue.get(timeout=600) for _ in processes]
    for p in processes:
        p.join()
    return writers * per_writer / (max(e for _, e in spans) - min(b for b, _ in spans))


def part_store() -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as folder, postgres_server(fsync=True) as pg:
        for writers in (1, 4):
            out[f"sqlite_variants_per_s_{writers}_writers"] = round(
                write_rate(str(Path(folder) / f"w{writers}.db"), writers, 100), 1)
            import psycopg

            base = pg.rpartition("/")[0]
            with psycopg.connect(pg, autocommit=True) as con:
                con.execute(f"CREATE DATABASE w{writers}")
            out[f"postgres_variants_per_s_{writers}_writers"] = round(write_rate(f"{base}/w{writers}", writers, 100), 1)
    return out


# -- transfer -----------------------------------------------------------------------------------------

def part_transfer(address: str, size_mb: int = 100) -> dict:
    import ray

    out = {}
    with _env(RAY_ENV):
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        @ray.remote(num_cpus=0)
        def make(mb):
            return np.ones(mb * 2**20, dtype=np.uint8), ray.get_runtime_context().get_node_id()

        @ray.remote(num_cpus=0)
        def touch(made):  # reads the last byte where it runs: the whole object had to come over
            return int(made[0][-1]), made[1], ray.get_runtime_context().get_node_id()

        on = [NodeAffinitySchedulingStrategy(n, soft=False) for n in nodes[:2]]
        times = []
        for _ in range(4):  # the first warms both nodes' workers up, and is left out
            ref = make.options(scheduling_strategy=on[0]).remote(size_mb)
            ray.wait([ref])
            start = time.perf_counter()
            _, made_on, read_on = ray.get(touch.options(scheduling_strategy=on[1]).remote(ref))
            times.append(time.perf_counter() - start)
            assert made_on != read_on, "both tasks ran on one node"
        times = times[1:]
        out["object_store_mb_per_s_between_nodes"] = round(size_mb / float(np.median(times)), 1)
    finally:
        ray.shutdown()
    with tempfile.TemporaryDirectory(dir=REPO) as folder:
        source = Path(folder) / "a.bin"
        source.write_bytes(os.urandom(size_mb * 2**20))
        copies = []
        for i in range(3):
            copies.append(timed(shutil.copyfile, source, Path(folder) / f"b{i}.bin"))
        out["file_copy_mb_per_s"] = round(size_mb / float(np.median(copies)), 1)
    return out


class _env:
    def __init__(self, values: dict):
        self.values = {k: v for k, v in values.items() if k not in os.environ}

    def __enter__(self):
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key in self.values:
            os.environ.pop(key, None)


# -- builds -------------------------------------------------------------------------------------------

def part_builds(out_dir: Path) -> dict:
    """MiniLM's two default INT8 pipelines, built from an empty cache (export to ONNX included)."""
    from inferarena import arena
    from inferarena.config import RunConfig
    from inferarena.passes.presets import preset

    cache = out_dir / "build-cache"
    shutil.rmtree(cache, ignore_errors=True)
    out = {}
    for name in ("int8-dynamic-ac", "nncf-int8"):
        shutil.rmtree(cache, ignore_errors=True)  # each from scratch, its ONNX export included
        config = RunConfig.parse({"model": "minilm"}, source="bench")
        result = arena.optimize(config, preset(name), arena.Paths(cache, out_dir / "build-work"))
        out[f"{name}_s"] = round(sum(step.seconds for step in result.passes), 1)
    shutil.rmtree(cache, ignore_errors=True)
    out["build_s"] = round(float(np.mean(list(out.values()))), 1)
    return out


# -- a real sweep, both launchers -----------------------------------------------------------------------

def part_sweep(address: str, out_dir: Path) -> dict:
    from conftest import make_mlp_onnx, quick_config

    work = out_dir / "sweep"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model = make_mlp_onnx(work / "mlp.onnx")
    config = quick_config(work, loadgen={"quick_duration_ms": 1000},
                          rounds={"count": 2, "noisy_spread_pct": 1e9, "drift_pct": 1e9})
    base = ["run", "--model", str(model), "--config", str(config), "--runtimes", "onnxruntime,openvino",
            "--cache-dir", str(work / "cache"), "--no-report"]
    result = {}
    for name, extra in (("spawn", []), ("ray_two_nodes", ["--launcher", "ray", "--ray-address", address])):
        json_path = work / f"{name}.json"
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "inferarena", *base, *extra, "--db", str(work / f"{name}.db"),
                               "--json", str(json_path)], capture_output=True, text=True,
                              env={**os.environ, **RAY_ENV, "COLUMNS": "200"})
        wall = time.perf_counter() - began
        if done.returncode:
            raise SystemExit(f"the {name} sweep failed:\n{done.stdout[-3000:]}")
        doc = json.loads(json_path.read_text())
        result[name] = {"wall_s": round(wall, 1), "variants": len(doc["variants"]),
                        "nodes": sorted({(v["node"] or {}).get("node_id") or "local" for v in doc["variants"]})}
    result["variant_s"] = round(result["spawn"]["wall_s"] / result["spawn"]["variants"], 1)
    return result


# -- the projection -----------------------------------------------------------------------------------

def project(m: dict, candidates: int, variant_s: float, rounds: int, builds: int, build_s: float,
            artifact_mb: float, transfer_mb_per_s: float) -> dict:
    """Wall time of a sweep on N nodes, one measurement slot each, and the first thing that saturates.

    - measuring: candidates × variant_s / N (each node measures one variant at a time);
    - Ray: each round a task, dispatched from the driver one at a time per slot: rounds × candidates
      × the lane's overhead per round / N, plus the driver's own dispatch, candidates × rounds / the
      no-op task rate (serial on the driver);
    - builds: run one after another before any measurement (`arena.run` builds each distinct pipeline
      once, in plan order), so builds × build_s whatever N;
    - store: candidates / the PostgreSQL write rate with several writers (one transaction per variant,
      from the driver);
    - artifacts: each node reads each artifact it measures once from the shared cache, so candidates
      × artifact_mb through one link (the file server's), shared by all nodes: the rate measured
      between two nodes here (Ray's object store over loopback) stands in for it.
    """
    out = {}
    for n in (1, 10, 100):
        parts = {
            "measuring_s": candidates * variant_s / n,
            "ray_overhead_s": rounds * candidates * m["ray_overhead_per_round_s"] / n
            + candidates * rounds / m["noop_tasks_per_s_in_flight"],
            "builds_s": builds * build_s,
            "store_s": candidates / m["postgres_variants_per_s_4_writers"],
            "artifacts_s": candidates * artifact_mb / transfer_mb_per_s,
        }
        # Builds come first, then measuring, Ray and artifact reads overlap across nodes, the store
        # writes overlap with measuring (each variant is written as it finishes).
        wall = parts["builds_s"] + max(parts["measuring_s"] + parts["ray_overhead_s"], parts["artifacts_s"],
                                       parts["store_s"])
        floor = {k: v for k, v in parts.items() if k != "measuring_s"}
        out[f"{n}_nodes"] = {"wall_h": round(wall / 3600, 2), **{k: round(v, 1) for k, v in parts.items()},
                             "largest_besides_measuring": max(floor, key=floor.get)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="ray,store,transfer,builds,sweep")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "scaling")
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--variant-s", type=float, default=None,
                        help="Seconds to measure one candidate (default: the sweep part's spawn figure)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--builds", type=int, default=20, help="Distinct builds (pipelines × conversions) in the "
                        "sweep: an assumption (a MiniLM run has 3; a wide search over pipelines and their knobs, dozens)")
    parser.add_argument("--build-s", type=float, default=None,
                        help="Seconds per build (default: the builds part's figure, MiniLM's INT8 pipelines)")
    parser.add_argument("--artifact-mb", type=float, default=90.0, help="Artifact size (MiniLM FP32 ONNX: 90 MB)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    measured: dict = {}
    if "ray" in parts:
        measured["ray"] = part_ray()
        print("ray:", measured["ray"], flush=True)
    if "store" in parts:
        measured["store"] = part_store()
        print("store:", measured["store"], flush=True)
    if "builds" in parts:
        measured["builds"] = part_builds(args.out)
        print("builds:", measured["builds"], flush=True)
    if parts & {"transfer", "sweep"}:
        with ray_cluster() as (address, _head, _worker):
            if "transfer" in parts:
                measured["transfer"] = part_transfer(address)
                print("transfer:", measured["transfer"], flush=True)
            if "sweep" in parts:
                measured["sweep"] = part_sweep(address, args.out)
                print("sweep:", measured["sweep"], flush=True)
    result = {"measured": measured}
    if {"ray", "store", "transfer"} <= parts:
        variant_s = args.variant_s or measured.get("sweep", {}).get("variant_s") or 30.0
        flat = {**measured["ray"], **measured["store"]}
        build_s = args.build_s or measured.get("builds", {}).get("build_s") or 60.0
        inputs = {"candidates": args.candidates, "variant_s": variant_s, "rounds": args.rounds, "builds": args.builds,
                  "build_s": build_s, "artifact_mb": args.artifact_mb,
                  "transfer_mb_per_s": measured["transfer"]["object_store_mb_per_s_between_nodes"]}
        result["projection_inputs"] = inputs
        result["projection"] = project(flat, **inputs)
        # MLPerf-compliant durations: at least 600 s per scenario, 4 scenarios, one round each.
        result["projection_compliant"] = project(flat, **{**inputs, "variant_s": 4 * 600.0 + 30, "rounds": 1})
        for title, key in (("quick", "projection"), ("compliant (4 scenarios × 600 s)", "projection_compliant")):
            print(f"\n{args.candidates} candidates, {title}: " + json.dumps(inputs if key == "projection" else
                                                                          {"variant_s": 2430, "rounds": 1}))
            print(f"{'nodes':>6} {'wall h':>8} {'measuring s':>12} {'ray s':>8} {'builds s':>9} {'store s':>8} "
                  f"{'artifacts s':>12}  largest besides measuring")
            for n, row in result[key].items():
                print(f"{n.split('_')[0]:>6} {row['wall_h']:>8} {row['measuring_s']:>12} {row['ray_overhead_s']:>8} "
                      f"{row['builds_s']:>9} {row['store_s']:>8} {row['artifacts_s']:>12}  {row['largest_besides_measuring']}")
    (args.out / "scaling.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {args.out / 'scaling.json'}")


if __name__ == "__main__":
    main()
