import pytest

from inferarena.errors import StoreError
from inferarena.plan import VariantSpec
from inferarena.store import Store


def _spec(name):
    return VariantSpec(name=name, runtime="rt", precision="fp32", shape="fixed", knobs={"threads": 2})


def test_save_and_load_round_trip(tmp_path):
    store = Store(tmp_path / "r.db")
    run_id = store.create_run({"quick": True}, "h1", "m", True, {"cpu_model": "x"}, {"samples": 3}, ["n"])
    scenario = {"scenario": "offline", "valid": True, "invalid_reason": None, "mode": "quick",
                "metrics": {"throughput_sps": 12.5}, "loadgen": {"result_validity": "VALID"}}
    store.save_variant(run_id, _spec("a"), {"status": "ok", "fidelity": {"cos_min": 1.0}, "scenarios": [scenario]})
    store.save_variant(run_id, _spec("b"), {"status": "failed", "error": "output mismatch"})
    run = store.load_run(run_id)
    assert [v["name"] for v in run["variants"]] == ["a", "b"]
    assert run["variants"][0]["scenarios"]["offline"]["metrics"]["throughput_sps"] == 12.5
    assert run["variants"][1]["error"] == "output mismatch"


def test_resumable_only_while_unfinished(tmp_path):
    store = Store(tmp_path / "r.db")
    run_id = store.create_run({}, "h1", "m", True, {}, {}, [])
    assert store.resumable_run("h1") == run_id
    assert store.resumable_run("other") is None
    store.finish_run(run_id)
    assert store.resumable_run("h1") is None


def test_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="does not exist"):
        Store(blocker / "r.db")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot write DB"):
        Store(corrupt)
