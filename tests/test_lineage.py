"""A build's lineage is one chain of PassRun nodes (Olive's FootprintNode): each node's parent is the artifact
the one before it made; the chain travels with the artifact, the cache, the store and the --json."""

from __future__ import annotations

import json

from inferarena import models, passes
from inferarena.artifacts import PassRun
from inferarena.results import ScenarioResult, VariantResult


def test_two_passes_make_one_chain_that_the_cache_and_the_store_keep(mlp_onnx, tmp_path):
    source = models.resolve(str(mlp_onnx))
    steps = (("ort_optimize", json.dumps({"level": "basic"})), ("ort_optimize", json.dumps({"level": "all"})))
    built, applied = passes.apply(steps, source, tmp_path / "cache", None)
    assert [n.name for n in applied] == ["ort_optimize", "ort_optimize"]
    assert applied[0].parent == str(source.path) and applied[1].parent == applied[0].output
    assert applied[1].output == str(built.path) and built.lineage == tuple(applied)
    assert not any(n.cached for n in applied) and all(n.seconds is not None for n in applied)
    assert applied[1].config["level"] == "all"

    again, reused = passes.apply(steps, source, tmp_path / "cache", None)  # from the cache's markers
    assert [n.cached for n in reused] == [True, True] and again.lineage == tuple(reused)
    assert [(n.name, n.parent, n.output, n.config) for n in reused] == [(n.name, n.parent, n.output, n.config)
                                                                        for n in applied]

    variant = VariantResult("onnxruntime/int8", "onnxruntime", "int8", "dynamic", passes=applied,
                            scenarios={"offline": ScenarioResult("offline", True, None, "quick", {"throughput_sps": 1.0})})
    back = VariantResult.from_row(variant.to_row(), variant.scenarios)
    assert back.passes == applied and back.parent_artifact == applied[1].parent


def test_stored_shapes_of_before_read_as_nodes():
    assert PassRun.of("export_onnx") == PassRun("export_onnx")  # a cache marker that kept names only
    stored = {"pass": "ort_quantize", "config": {"mode": "dynamic"}, "cached": True, "seconds": 0.5, "parent": "a",
              "output": "b"}
    node = PassRun.of(stored)
    assert node.name == "ort_quantize" and node.cached and node.as_dict() == stored
    assert VariantResult.from_dict({"name": "v", "runtime": "onnxruntime", "passes": [stored]}).passes == [node]
