"""How `export_onnx` writes attention, and what it costs OpenVINO INT8, side by side in one run.

Builds MiniLM's `nncf-int8` twice through inferarena's own passes (`arena.optimize`, the same NNCF
calibration), once from each attention export:
- eager (the default): transformers' eager attention, plain MatMul/Softmax ops in the ONNX graph;
- sdpa: torch's scaled_dot_product_attention, which the exporter wraps in IsNaN/Where guards.
Then it prints, for each: the guard ops in the graph, the fused attention kernels OpenVINO's CPU plugin
made ("Subgraph" nodes in the compiled model), cos_min against torch FP32 on the evaluation samples,
and the hand loop of bench/vs_hand.py (sorted batches, AsyncInferQueue, THROUGHPUT hint) in interleaved
rounds, with the ratio eager ÷ sdpa per round and its median.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/export_attention.py [--rounds 5] [--batch 16] [--work DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import vs_hand  # noqa: E402 - the hand loop and the corpus, shared with the reference bench

EVAL = 128  # samples from the start of the workload (calibration takes them from its end)


def build(attention: str, work: Path) -> Path:
    from inferarena import arena
    from inferarena.cli_common import DEFAULT_CACHE
    from inferarena.config import PipelineSpec, RunConfig

    pipeline = PipelineSpec(name=f"nncf-int8-{attention}", passes=[
        {"name": "export_onnx", "config": {"attention": attention}}, {"name": "nncf_quantize", "config": {}}])
    built = arena.optimize(RunConfig.parse({}), pipeline, arena.Paths(cache_dir=DEFAULT_CACHE, work_dir=work))
    return Path(built.artifact.path), Path(built.passes[0].output)


def cos_min(xml: Path, workload) -> float:
    import openvino as ov
    import torch

    from inferarena import models
    from inferarena.config import ShapeStrategy
    from inferarena.models.hf_encoder import input_names, load_embedding_module

    artifact = models.resolve("minilm")
    uses_tt = bool(artifact.meta.get("uses_token_type_ids"))
    module, names = load_embedding_module(artifact.path, uses_tt), input_names(uses_tt)
    request = ov.Core().compile_model(str(xml), "CPU").create_infer_request()
    worst = 1.0
    for i in range(0, EVAL, 8):
        batch = workload.collate(list(range(i, i + 8)), ShapeStrategy.dynamic)
        with torch.inference_mode():
            want = module(**{n: torch.from_numpy(batch[n]) for n in names}).numpy()
        got = np.asarray(request.infer({n: batch[n] for n in names})[0])
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        worst = min(worst, float(cos.min()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    import onnx
    import openvino as ov

    work = args.work or Path(tempfile.mkdtemp(prefix="export-attention-"))
    workload = vs_hand.corpus()
    kinds = ("eager", "sdpa")
    xmls = {}
    for attention in kinds:
        xml, exported = build(attention, work)
        xmls[attention] = xml
        guards = sum(n.op_type in ("IsNaN", "Where") for n in onnx.load(str(exported), load_external_data=False).graph.node)
        compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
        layers = collections.Counter(op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops())
        print(f"{attention}: {xml}\n  ONNX IsNaN/Where ops {guards}; OpenVINO fused attention kernels (Subgraph) "
              f"{layers.get('Subgraph', 0)}, separate MatMul {layers.get('MatMul', 0)}, Transpose "
              f"{layers.get('Transpose', 0)}; cos_min on {EVAL} samples {cos_min(xml, workload):.5f}", flush=True)
    speeds: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for attention in (kinds if r % 2 == 0 else kinds[::-1]):
            speeds[attention].append(vs_hand.hand_openvino(xmls[attention], workload, args.seconds, (args.batch,))[f"b{args.batch}"])
        print(f"round {r + 1}: eager {speeds['eager'][-1]:.0f}, sdpa {speeds['sdpa'][-1]:.0f} samples/s, "
              f"ratio {speeds['eager'][-1] / speeds['sdpa'][-1]:.2f}x", flush=True)
    ratios = np.array(speeds["eager"]) / np.array(speeds["sdpa"])
    print(f"eager ÷ sdpa, hand loop b{args.batch} THROUGHPUT: median {np.median(ratios):.2f}x over {args.rounds} "
          f"rounds (medians {np.median(speeds['eager']):.0f} / {np.median(speeds['sdpa']):.0f} samples/s)")


if __name__ == "__main__":
    main()
