"""The launcher seam: the same sweep in process (inline) and in spawned workers, with the same outcomes."""

import pytest

from inferarena import arena, launchers
from inferarena.config import RunConfig
from inferarena.errors import ConfigError, ModelError
from inferarena.store import SQLiteStore


def _boom():
    raise ModelError("the model is broken", "fix it")


def _value():
    return 42


def test_inline_and_spawn_report_alike():
    for launcher in (launchers.get("inline"), launchers.get("spawn")):
        assert launcher.run(_value, (), 60).value == 42
        failed = launcher.run(_boom, (), 60)
        assert not failed.ok and failed.error.startswith("the model is broken")
    with pytest.raises(ConfigError, match="unknown launcher"):
        launchers.get("slurm")


def test_a_whole_sweep_runs_inline(tmp_path, mlp_onnx):
    """plan -> reference -> rounds -> store, all in this process: what unit tests and --debug use."""
    config = RunConfig.parse({
        "model": str(mlp_onnx), "quick": True, "runtimes": [{"name": "onnxruntime"}], "pipelines": [],
        "scenarios": ["single_stream", "offline"], "rounds": {"count": 2},
        "workload": {"num_samples": 32, "eval_samples": 8, "batch_size": 8}, "loadgen": {"quick_duration_ms": 200}})
    store = SQLiteStore(tmp_path / "r.db")
    events = []
    summary = arena.run(config, store, arena.Paths(tmp_path / "cache", tmp_path / "work"),
                        on_event=lambda event, data: events.append((event, data.get("name"))), launcher=launchers.Inline())
    run = store.load_run(summary.run_id)
    (variant,) = run.variants
    assert variant.ok and variant.kind == "predict" and variant.rounds >= 2
    assert set(variant.scenarios) == {"single_stream", "offline"}
    offline = variant.scenarios["offline"]
    assert offline.metrics["throughput_sps"] > 0 and offline.metrics["rounds"] >= 2
    assert len(store.load_sample_rounds(summary.run_id)[(variant.name, "single_stream")]) == variant.rounds
    assert ("done", variant.name) in events
