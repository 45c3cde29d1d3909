"""How much does measuring through LoadGen cost? Side by side, in one run, on the same session.

1. A ~1 ms ONNX Runtime model: LoadGen SingleStream (through inferarena's own scenario harness)
   against a bare perf_counter loop. Many short rounds alternate, and each round's ratio of p50s is
   taken, so that drift on a noisy machine hits both sides alike. Target: <= 3 %. The same bare loop
   on a second thread is timed too: LoadGen calls the SUT from its own thread, and that alone costs
   something, which this separates from LoadGen's own cost.
2. The queries/s LoadGen sustains against a no-op model. Target: >= 20k queries/s.

Run: .venv/bin/python bench/harness_overhead.py [--rounds 20] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.config import LoadGenConfig, ShapeStrategy
from inferarena.runtimes.base import Session
from inferarena.runtimes.ort import OnnxRuntime
from inferarena.scenarios.base import Estimates, ScenarioContext
from inferarena.scenarios.mlperf import SingleStream
from inferarena.workloads.tensor import TensorWorkload


def mlp_onnx(path: Path, width: int, layers: int) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array((rng.standard_normal((width, width)) / width**0.5).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]), helper.make_node("Relu", [f"h{i}"], [f"r{i}"])]
        prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


class NoOp(Session):
    input_names, info = ["x"], {}

    def predict(self, batch):
        return {}


def bare_loop(session: Session, workload: TensorWorkload, seconds: float) -> np.ndarray:
    batches = [workload.collate([i], ShapeStrategy.fixed) for i in range(len(workload))]
    times, deadline, i = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        session.predict(batches[i % len(batches)])
        times.append(time.perf_counter_ns() - start)
        i += 1
    return np.array(times) / 1e6


def bare_loop_on_thread(session: Session, workload: TensorWorkload, seconds: float) -> np.ndarray:
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("times", bare_loop(session, workload, seconds)))
    worker.start()
    worker.join()
    return out["times"]


def loadgen(session: Session, workload: TensorWorkload, seconds: float, expected_s: float):
    ctx = ScenarioContext(
        session=session, workload=workload, strategy=ShapeStrategy.fixed, batch_size=1, quick=True,
        settings=LoadGenConfig(quick_duration_ms=int(seconds * 1000)),
        estimates=Estimates(latency_s_single=expected_s, latency_s_multi=expected_s, throughput_sps=1 / expected_s),
    )
    return SingleStream().run(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()

    workload = TensorWorkload(
        {"x": np.random.default_rng(0).standard_normal((256, args.width)).astype(np.float32)},
        batched=True, source="random", notes=[],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = mlp_onnx(Path(tmp) / "bench.onnx", args.width, args.layers)
        runtime = OnnxRuntime()
        session = runtime.load(Artifact(path, "onnx"), "fp32", runtime.validate_knobs({}), {})
        warm = bare_loop(session, workload, 1.0)
        print(f"model: {args.layers}x MatMul {args.width}x{args.width} on ONNX Runtime, "
              f"bare p50 {np.median(warm):.3f} ms (warm-up)")
        rows = []
        for r in range(args.rounds):
            first_bare = r % 2 == 0  # alternate the order too
            if first_bare:
                bare = bare_loop(session, workload, args.seconds)
            result = loadgen(session, workload, args.seconds, float(np.median(warm)) / 1000)
            if not first_bare:
                bare = bare_loop(session, workload, args.seconds)
            threaded = bare_loop_on_thread(session, workload, args.seconds)
            m = result.metrics
            rows.append((np.mean(bare), np.median(bare), m["latency_ms_mean"], m["latency_ms_p50"], np.median(threaded)))
        rows = np.array(rows)
        bare_mean, bare_p50, lg_mean, lg_p50, thread_p50 = np.median(rows, axis=0)
        print(f"{args.rounds} alternating rounds of {args.seconds} s: bare p50 {bare_p50:.4f} ms, bare on a thread "
              f"{thread_p50:.4f} ms, LoadGen p50 {lg_p50:.4f} ms (medians over rounds)")
        ratios = 100 * (rows[:, 3] / rows[:, 1] - 1)
        q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
        mean_ratio = np.median(100 * (rows[:, 2] / rows[:, 0] - 1))
        thread_cost = np.median(100 * (rows[:, 4] / rows[:, 1] - 1))
        print(f"added latency, LoadGen vs bare loop: p50 {q50:+.2f} % (rounds' IQR {q25:+.1f} .. {q75:+.1f} %), "
              f"mean {mean_ratio:+.2f} %  (target <= 3 %)")
        print(f"  of which running on a non-main thread: {thread_cost:+.2f} %; "
              f"LoadGen vs the threaded loop: {np.median(100 * (rows[:, 3] / rows[:, 4] - 1)):+.2f} %")

    noop = loadgen(NoOp(), workload, args.seconds, 5e-6)
    print(f"no-op model: LoadGen SingleStream sustains {noop.metrics['qps']:,.0f} queries/s "
          f"(p50 {noop.metrics['latency_ms_p50'] * 1000:.1f} us)  (target >= 20,000)")


if __name__ == "__main__":
    main()
