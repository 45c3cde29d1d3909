"""A variant's rounds stay on one machine: when the machine of its earlier rounds is lost, the variant is
measured again from its first round in a new lane (never merged across machines), up to `retries`
times, then stored as failed while the sweep goes on. Inline jobs; the lanes lose their machine on cue."""

from __future__ import annotations

from inferarena import arena, launchers
from inferarena.config import RunConfig
from inferarena.store import SQLiteStore


class LosesMachines(launchers.Inline):
    """Inline jobs, in lanes whose machine is lost at their second round, `losses` times in all."""

    retries = 2

    def __init__(self, losses: int):
        self.losses, self.lanes = losses, []

    def lane(self, node=None):
        parent = self

        class Lane(launchers.Inline):
            rounds = 0

            def run(self, fn, args, timeout_s, log_path=None):
                self.rounds += 1
                if self.rounds == 2 and parent.losses > 0:
                    parent.losses -= 1
                    raise launchers.PlaceLost("node lost (NodeDiedError)")
                return super().run(fn, args, timeout_s, log_path)

        self.lanes.append(Lane())
        return self.lanes[-1]


def _sweep(tmp_path, mlp_onnx, launcher):
    config = RunConfig.parse({
        "model": str(mlp_onnx), "quick": True, "runtimes": [{"name": "onnxruntime"}], "pipelines": [],
        "scenarios": ["single_stream"], "rounds": {"count": 2, "noisy_spread_pct": 1e9, "drift_pct": 1e9},
        "workload": {"num_samples": 32, "eval_samples": 8, "batch_size": 8}, "loadgen": {"quick_duration_ms": 100}})
    store = SQLiteStore(tmp_path / "r.db")
    summary = arena.run(config, store, arena.Paths(tmp_path / "cache", tmp_path / "work"), launcher=launcher)
    (variant,) = store.load_run(summary.run_id).variants
    return variant


def test_a_lost_machine_costs_the_variant_a_fresh_start_not_a_merge(tmp_path, mlp_onnx):
    launcher = LosesMachines(losses=1)
    variant = _sweep(tmp_path, mlp_onnx, launcher)
    assert variant.ok and variant.rounds == 2
    assert [lane.rounds for lane in launcher.lanes] == [2, 2]  # round 1 on the lost machine was not kept


def test_a_variant_whose_machines_keep_dying_is_stored_failed(tmp_path, mlp_onnx):
    launcher = LosesMachines(losses=10)
    variant = _sweep(tmp_path, mlp_onnx, launcher)
    assert not variant.ok and len(launcher.lanes) == 3
    assert variant.error == "node lost (NodeDiedError): its machine was lost 3 time(s)"
