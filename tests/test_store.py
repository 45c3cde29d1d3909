import json
import sqlite3

import numpy as np
import pytest

from inferarena.errors import StoreError
from inferarena.results import ScenarioResult, VariantResult, VariantSpec
from inferarena.store import SQLiteStore


def _spec(name, **extra):
    return VariantSpec(name=name, runtime="onnxruntime", precision="fp32", shape="fixed", knobs={"threads": 2}, **extra)


def test_save_and_load_round_trip(tmp_path):
    store = SQLiteStore(tmp_path / "r.db")
    run_id = store.create_run({"quick": True}, "h1", "m", True, {"cpu_model": "x"}, {"samples": 3}, ["n"])
    scenario = ScenarioResult("offline", True, None, "quick", {"throughput_sps": 12.5}, {"result_validity": "VALID"},
                              np.arange(6, dtype=float), [4, 2])
    pipeline = {"name": "int8-dynamic", "passes": [{"name": "ort_quantize", "config": {"mode": "dynamic"}}]}
    lineage = [{"pass": "ort_quantize", "config": {}, "cached": False, "seconds": 1.0, "parent": "/src.onnx",
                "output": "/q.onnx"}]
    a = VariantResult.of(_spec("a@int8-dynamic", pipeline="int8-dynamic", pipeline_config=json.dumps(pipeline)),
                         fidelity={"cos_min": 1.0}, scenarios={"offline": scenario}, passes=lineage, artifact="/q.onnx")
    store.save_variant(run_id, a)
    store.save_variant(run_id, VariantResult.of(_spec("b"), status="failed", error="output mismatch"))
    run = store.load_run(run_id)
    assert [v.name for v in run.variants] == ["a@int8-dynamic", "b"]
    got = run.variants[0]
    assert got.scenarios["offline"].metrics["throughput_sps"] == 12.5 and got.kind == "predict"
    assert got.pipeline == "int8-dynamic" and got.pipeline_config == pipeline and got.parent_artifact == "/src.onnx"
    assert run.variants[1].error == "output mismatch" and not run.variants[1].ok
    rounds = store.load_sample_rounds(run_id)[("a@int8-dynamic", "offline")]
    assert [len(r) for r in rounds] == [4, 2]


def test_a_db_from_before_kinds_and_lineage_reads_back(tmp_path):
    """Rows written by the previous schema (no kind or pipeline columns): the kind is the runtime's, the
    pipeline is read once from the name and its definition from the run config or the preset."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, model TEXT NOT NULL, quick INTEGER NOT NULL, config_hash TEXT NOT NULL,
        config_json TEXT NOT NULL, environment_json TEXT NOT NULL, workload_json TEXT NOT NULL, notes_json TEXT NOT NULL);
    CREATE TABLE variants (run_id INTEGER NOT NULL, name TEXT NOT NULL, runtime TEXT NOT NULL, precision TEXT NOT NULL,
        shape TEXT NOT NULL, knobs_json TEXT NOT NULL, status TEXT NOT NULL, error TEXT, error_detail TEXT,
        fidelity_json TEXT, memory_json TEXT, session_info_json TEXT, load_s REAL, finished_at TEXT NOT NULL,
        build_json TEXT, task_json TEXT, PRIMARY KEY (run_id, name));
    INSERT INTO runs VALUES (1, 't', 't', 'complete', 'm', 1, 'h', '{"pipelines": null, "scenarios": ["offline"]}',
        '{}', '{}', '[]');
    INSERT INTO variants VALUES (1, 'onnxruntime/int8/fixed@int8-dynamic-ac', 'onnxruntime', 'int8', 'fixed', '{}',
        'ok', NULL, NULL, '{"cos_min": 0.99}', NULL, NULL, 0.1, 't', '{"passes": [], "artifact": "/x.onnx"}', NULL);
    INSERT INTO variants VALUES (1, 'llama_cpp/q4_1', 'llama_cpp', 'q4_1', 'fixed', '{}', 'ok', NULL, NULL, NULL,
        NULL, NULL, 0.1, 't', NULL, NULL);
    """)
    db.commit()
    db.close()
    run = SQLiteStore(path).load_run(1)
    quantized, llm = run.variants
    assert quantized.kind == "predict" and quantized.pipeline == "int8-dynamic-ac"
    assert quantized.pipeline_config["passes"][0]["name"] == "ort_quantize" and quantized.artifact == "/x.onnx"
    assert llm.kind == "generate" and llm.pipeline is None


def test_resumable_only_while_unfinished(tmp_path):
    store = SQLiteStore(tmp_path / "r.db")
    run_id = store.create_run({}, "h1", "m", True, {}, {}, [])
    assert store.resumable_run("h1") == run_id
    assert store.resumable_run("other") is None
    store.finish_run(run_id)
    assert store.resumable_run("h1") is None


def test_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(blocker / "r.db")
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot write DB"):
        SQLiteStore(corrupt)


def test_a_db_from_a_future_schema_is_refused_and_left_intact(tmp_path):
    from inferarena.store.sqlite import SCHEMA_VERSION

    path = tmp_path / "future.db"
    store = SQLiteStore(path)
    store.create_run({}, "h1", "m", True, {}, {}, [])
    store.close()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer inferarena") as err:
        SQLiteStore(path)
    assert "upgrade inferarena" in err.value.fix
    assert path.read_bytes() == before
