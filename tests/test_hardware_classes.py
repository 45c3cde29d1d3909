"""Hardware is part of every result: variants measured on different machines are grouped by hardware
class, never ranked against each other as if the hardware were the same, and `recommend --hardware`
picks within one class."""

from __future__ import annotations

import pytest
from rich.console import Console

from inferarena.errors import ConfigError
from inferarena.hardware import by_class, hardware_class, match_class, node_info
from inferarena.recommend import recommend
from inferarena.results import RunRecord, VariantResult

FAST = {"hostname": "big", "cpu_model": "Xeon 8480", "logical_cores": 64, "accelerator": None, "node_id": "n1"}
SLOW = {"hostname": "small", "cpu_model": "EPYC 7B13", "logical_cores": 2, "accelerator": None, "node_id": "n2"}


def variant(name, thr, node, runtime="onnxruntime"):
    return VariantResult.from_dict({
        "name": name, "runtime": runtime, "precision": "fp32", "shape": "dynamic", "knobs": {}, "status": "ok",
        "fidelity": {"cos_min": 1.0}, "node": node,
        "scenarios": {"offline": {"valid": True, "metrics": {"throughput_sps": thr}}}})


def run_of(*variants, executor="ray"):
    return RunRecord.from_dict({"run_id": 3, "model": "m", "config": {"pipelines": [], "workload": {}, "scenarios": ["offline"]},
                                "environment": {"cpu_model": "EPYC 7B13", "logical_cores": 2, "launcher": executor},
                                "variants": list(variants)})


def test_a_class_is_the_cpu_its_cores_and_the_accelerator():
    assert hardware_class(FAST) == "Xeon 8480 · 64 cores"
    assert hardware_class({**SLOW, "accelerator": "NVIDIA H100"}) == "EPYC 7B13 · 2 cores · NVIDIA H100"
    assert hardware_class(None) == "unrecorded"
    here = node_info()
    assert here["hostname"] and here["logical_cores"] >= 1 and here["node_id"] is None
    groups = by_class([variant("a", 1, FAST), variant("b", 1, SLOW), variant("c", 1, FAST)])
    assert {k: [v.name for v in vs] for k, vs in groups.items()} == {"Xeon 8480 · 64 cores": ["a", "c"],
                                                                     "EPYC 7B13 · 2 cores": ["b"]}
    assert match_class("xeon", list(groups)) == ["Xeon 8480 · 64 cores"]


def test_recommend_never_ranks_a_fast_node_against_a_slow_one():
    # The slow machine's best variant would lose to anything on the fast one: it is picked within its class.
    run = run_of(variant("ort@big", 9000.0, FAST), variant("ov@big", 8000.0, FAST), variant("ort@small", 300.0, SLOW),
                 variant("ov@small", 500.0, SLOW, runtime="openvino"), variant("tf@small", 100.0, SLOW))
    default = recommend(run, {}, "throughput")
    assert default.variant == "ov@small" and default.hardware == "EPYC 7B13 · 2 cores"  # the class with most variants
    assert "2 hardware classes, never ranked against each other" in default.explanation
    assert "left out: Xeon 8480 · 64 cores (2)" in default.explanation
    fast = recommend(run, {}, "throughput", hardware="Xeon")
    assert fast.variant == "ort@big" and fast.runner_up == "ov@big" and fast.hardware == "Xeon 8480 · 64 cores"
    with pytest.raises(ConfigError, match="no variant of this run was measured on hardware class 'H100'") as err:
        recommend(run, {}, "throughput", hardware="H100")
    assert "Xeon 8480 · 64 cores; EPYC 7B13 · 2 cores" in err.value.fix
    with pytest.raises(ConfigError, match="names several hardware classes"):
        recommend(run, {}, "throughput", hardware="cores")
    one = run_of(variant("a", 1.0, SLOW), variant("b", 2.0, SLOW))
    assert "hardware classes" not in recommend(one, {}, "throughput").explanation


def test_leaderboards_rank_within_each_class_and_show_each_node():
    from inferarena.report.console import render_run

    console = Console(record=True, width=200)
    render_run(run_of(variant("ort@big", 9000.0, FAST), variant("ort@small", 300.0, SLOW)), console)
    text = console.export_text()
    assert "Where each variant ran" in text and "big" in text and "n1" in text
    assert text.count("Offline — ranked by") == 2
    assert "On Xeon 8480 · 64 cores · 1 of 2 variants, ranked only against each other" in text
    # One machine, one process launcher: no per-node table, one leaderboard.
    console = Console(record=True, width=200)
    render_run(run_of(variant("a", 1.0, SLOW), variant("b", 2.0, SLOW), executor="spawn"), console)
    text = console.export_text()
    assert "Where each variant ran" not in text and text.count("Offline — ranked by") == 1


def test_compare_says_so_instead_of_comparing_across_hardware():
    import numpy as np

    from inferarena.report.compare import compare

    a, b = run_of(variant("ort", 9000.0, FAST)), run_of(variant("ort", 300.0, SLOW))
    samples = {("ort", "offline"): [np.ones(10), np.ones(10)]}
    rows, notes = compare(a, b, samples, samples)
    assert rows == [] and any("measured on different hardware (Xeon 8480 · 64 cores vs EPYC 7B13 · 2 cores)" in n
                              for n in notes)
