"""The shared store: the same schema and queries on SQLite and on a real PostgreSQL server, and several
drivers writing to one database at once without losing or duplicating anything."""

from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pytest
from services import postgres_server

from inferarena.errors import StoreError
from inferarena.results import ScenarioResult, VariantResult, VariantSpec
from inferarena.store import open_store

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg_server():
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the module's server for each test."""
    import psycopg

    base, _, _ = pg_server.rpartition("/")
    name = f"t{np.random.default_rng().integers(1 << 40)}"
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    return str(tmp_path / "r.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")


def _spec(name, **extra):
    return VariantSpec(name=name, runtime="onnxruntime", precision="fp32", shape="fixed", knobs={"threads": 2}, **extra)


def _variant(name: str, value: float = 12.5) -> VariantResult:
    scenario = ScenarioResult("offline", True, None, "quick", {"throughput_sps": value}, {"result_validity": "VALID"},
                              np.arange(6, dtype=float), [4, 2])
    return VariantResult.of(_spec(name), fidelity={"cos_min": 1.0}, scenarios={"offline": scenario},
                            node={"hostname": "n1", "node_id": "abc", "cpu_model": "cpu", "logical_cores": 2})


def test_the_same_round_trip_on_both_backends(db):
    store = open_store(db)
    run_id = store.create_run({"quick": True}, "h1", "m", True, {"cpu_model": "x"}, {"samples": 3}, ["n"])
    pipeline = {"name": "int8-dynamic", "passes": [{"name": "ort_quantize", "config": {"mode": "dynamic"}}]}
    store.save_variant(run_id, _variant("z-first"))
    store.save_variant(run_id, VariantResult.of(_spec("a@int8-dynamic", pipeline="int8-dynamic",
                                                      pipeline_config=json.dumps(pipeline)), status="failed", error="x"))
    store.save_variant(run_id, _variant("z-first", 13.0))  # stored again (a resumed round): replaced, not doubled
    store.update_environment(run_id, {"reference": 1})
    run = store.load_run(run_id)
    assert [v.name for v in run.variants] == ["z-first", "a@int8-dynamic"]  # the order they were first stored in
    first = run.variants[0]
    assert first.scenarios["offline"].metrics["throughput_sps"] == 13.0
    assert first.node == {"hostname": "n1", "node_id": "abc", "cpu_model": "cpu", "logical_cores": 2}
    assert run.variants[1].pipeline_config == pipeline and run.environment == {"cpu_model": "x", "reference": 1}
    assert [len(r) for r in store.load_sample_rounds(run_id)[("z-first", "offline")]] == [4, 2]
    assert store.resumable_run("h1") == run_id
    store.finish_run(run_id)
    assert store.resumable_run("h1") is None
    assert store.runs() == [{"run_id": run_id, "created_at": run.created_at, "status": "complete", "model": "m",
                             "quick": 1, "ok": 1, "failed": 1}]
    store.close()


def _writer(db: str, writer: int, runs: int, variants: int, start, queue) -> None:
    """One driver: waits for the others, then creates runs and stores variants as fast as it can."""
    store = open_store(db)
    start.wait()
    ids = []
    for r in range(runs):
        run_id = store.create_run({"writer": writer, "run": r}, f"h{writer}-{r}", "m", True, {}, {}, [])
        ids.append(run_id)
        for v in range(variants):
            store.save_variant(run_id, _variant(f"w{writer}/v{v}", float(v)))
        store.finish_run(run_id)
    store.close()
    queue.put((writer, ids))


@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_drivers_lose_and_duplicate_nothing(db, writers):
    open_store(db).close()  # the schema exists before the race, as after any first run
    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(writers), context.Queue()
    runs, variants = 3, 8
    processes = [context.Process(target=_writer, args=(db, w, runs, variants, start, queue)) for w in range(writers)]
    for p in processes:
        p.start()
    got = dict(queue.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(30)
        assert p.exitcode == 0
    ids = [i for w in got.values() for i in w]
    assert len(ids) == len(set(ids)) == writers * runs  # run ids unique across writers
    store = open_store(db)
    for writer, run_ids in got.items():
        for r, run_id in enumerate(run_ids):
            run = store.load_run(run_id)
            assert run.config == {"writer": writer, "run": r} and run.status == "complete"
            assert [v.name for v in run.variants] == [f"w{writer}/v{v}" for v in range(variants)]
            assert [v.scenarios["offline"].metrics["throughput_sps"] for v in run.variants] == [float(v) for v in range(variants)]
    assert sum(r["ok"] for r in store.runs(limit=1000)) == writers * runs * variants


def test_the_schema_is_created_once_when_drivers_open_a_new_database_together(pg_url):
    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_writer, args=(pg_url, w, 1, 1, start, queue)) for w in range(3)]
    for p in processes:
        p.start()
    got = dict(queue.get(timeout=120) for _ in processes)
    assert sorted(i for ids in got.values() for i in ids) == [1, 2, 3]


def test_a_server_that_is_not_there_is_one_line_with_the_fix():
    from services import free_port

    with pytest.raises(StoreError, match="cannot connect to postgresql://u:\\*\\*\\*@127.0.0.1") as err:
        open_store(f"postgresql://u:secret@127.0.0.1:{free_port()}/db")
    assert "secret" not in str(err.value) and "start the server" in err.value.fix


def test_a_future_schema_is_refused(pg_url):
    import psycopg

    from inferarena.store.base import SCHEMA_VERSION

    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("UPDATE inferarena_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer inferarena"):
        open_store(pg_url)


def test_the_cli_reads_a_postgres_history(pg_url):
    from typer.testing import CliRunner

    from inferarena.cli import app

    store = open_store(pg_url)
    run_id = store.create_run({"scenarios": ["offline"]}, "h", "tiny-model", True, {"cpu_model": "cpu", "logical_cores": 2}, {}, [])
    store.save_variant(run_id, _variant("onnxruntime/fp32/fixed"))
    store.finish_run(run_id)
    runner = CliRunner()
    listed = runner.invoke(app, ["results", "--db", pg_url], catch_exceptions=False)
    assert listed.exit_code == 0 and "tiny-model" in listed.output and "complete" in listed.output
    assert "postgresql://postgres@127.0.0.1" in listed.output
    shown = runner.invoke(app, ["show", str(run_id), "--db", pg_url], catch_exceptions=False)
    assert shown.exit_code == 0 and "onnxruntime/fp32/fixed" in shown.output
    missing = runner.invoke(app, ["show", "99", "--db", pg_url], catch_exceptions=False)
    assert missing.exit_code == 2 and "run 99 is not in postgresql://" in missing.output
