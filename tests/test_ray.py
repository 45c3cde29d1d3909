"""The Ray launcher on a real cluster on this machine: a head and a second worker node started with
`ray start` on loopback, each offering one measurement slot, with a real PostgreSQL as the shared
store. The sweep spreads over both nodes, every variant records its node, a driver killed mid-sweep
resumes without repeating or losing a variant, and a node killed mid-sweep costs a retry, not the sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import make_mlp_onnx, quick_config
from services import RAY_ENV, postgres_server, ray_cluster

pytest.importorskip("ray")
pytest.importorskip("psycopg")
pytestmark = pytest.mark.slow  # a cluster takes about 15 s to start and each sweep tens of seconds

INFERARENA = [sys.executable, "-m", "inferarena"]


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as url:
        yield url


def _sweep_args(tmp_path: Path, db: str, duration_ms: int = 200, rounds: int = 1) -> list[str]:
    model = make_mlp_onnx(tmp_path / "mlp.onnx")
    config = quick_config(tmp_path, loadgen={"quick_duration_ms": duration_ms},
                          rounds={"count": rounds, "noisy_spread_pct": 1e9, "drift_pct": 1e9})
    return ["run", "--model", str(model), "--config", str(config), "--runtimes", "onnxruntime,openvino",
            "--db", db, "--cache-dir", str(tmp_path / "cache"), "--no-report"]


def _cli(args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen([*INFERARENA, *args], cwd=cwd, env={**os.environ, **RAY_ENV, "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _node_ids(address: str) -> dict[str, bool]:
    code = ("import ray, sys, json; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
            "print(json.dumps({n['NodeID']: n['Alive'] for n in ray.nodes()}))")
    out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, check=True,
                         env={**os.environ, **RAY_ENV})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_local_ray_runs_jobs_like_spawn():
    """No address: Ray starts on this machine for the launcher and stops with it. (Jobs are functions a
    node can import, as every job of a sweep is.)"""
    import operator

    import ray as ray_module

    from inferarena import launchers

    ray = launchers.get("ray")
    try:
        assert ray.slots == 1 and ray.describe()["ray_address"] == "local"
        outcome = ray.lane().run(operator.add, (40, 2), 60)
        assert outcome.ok and outcome.value == 42 and outcome.node["node_id"] and outcome.node["hostname"]
        failed = ray.run(launchers.get, ("slurm",), 60)  # a job's own error comes back as its one line
        assert not failed.ok and failed.error.startswith("unknown launcher 'slurm'")
    finally:
        ray.close()
    assert not ray_module.is_initialized()


def test_a_search_runs_its_trials_and_confirmations_on_ray(tmp_path):
    """`search --launcher ray` with Ray started here: trials and the finalists' confirmation rounds (back on
    the node of their first rounds) as Ray tasks."""
    out = tmp_path / "search.json"
    args = _sweep_args(tmp_path, str(tmp_path / "s.db"))
    args[0] = "search"
    args[args.index("--runtimes") + 1] = "onnxruntime"
    driver = _cli([*args, "--trials", "2", "--launcher", "ray", "--json", str(out)], tmp_path)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output
    doc = json.loads(out.read_text())
    assert doc["environment"]["launcher"] == "ray" and doc["environment"]["ray_address"] == "local"
    assert doc["variants"] and all(v["node"]["node_id"] for v in doc["variants"] if v["status"] == "ok")


def test_a_sweep_spreads_over_two_nodes_into_postgres(tmp_path, cluster, pg):
    address, _head, _worker = cluster
    out = tmp_path / "run.json"
    driver = _cli([*_sweep_args(tmp_path, pg), "--launcher", "ray", "--ray-address", address, "--json", str(out)],
                  tmp_path)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output
    assert "Where each variant ran" in output and "SingleStream" in output and "Offline" in output
    doc = json.loads(out.read_text())
    assert doc["environment"]["launcher"] == "ray" and doc["environment"]["measurement_slots"] == 2
    nodes = _node_ids(address)
    used = set()
    for v in doc["variants"]:
        assert v["status"] == "ok", v
        assert v["node"]["hostname"] and v["node"]["node_id"] in nodes
        used.add(v["node"]["node_id"])
    assert len(used) == 2  # the first two variants start together, and each node has one slot
    listed = subprocess.run([*INFERARENA, "results", "--db", pg], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert listed.returncode == 0 and "mlp.onnx" in listed.stdout and "complete" in listed.stdout


def test_a_driver_killed_mid_sweep_resumes_without_repeating_or_losing(tmp_path, cluster, pg):
    from inferarena.store import open_store

    address, _head, _worker = cluster
    args = [*_sweep_args(tmp_path, pg, duration_ms=1500), "--launcher", "ray", "--ray-address", address]
    driver = _cli(args, tmp_path, start_new_session=True)
    store = open_store(pg)
    run_id, kept = None, {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not kept:  # killed as soon as one variant is stored
        time.sleep(0.5)
        rows = [r for r in store.runs() if r["status"] == "running"]
        if rows:
            run_id = rows[0]["run_id"]
            kept = {v.name: v for v in store.load_run(run_id).variants}
    assert kept, "no variant was stored in time"
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    assert store.load_run(run_id).status == "running"
    resumed = _cli([*args, "--resume"], tmp_path)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"Resumed run {run_id}: kept {len(kept)} stored variant(s)" in output
    run = store.load_run(run_id)
    names = [v.name for v in run.variants]
    assert run.status == "complete" and len(names) == len(set(names)) == 3
    for name, before in kept.items():  # stored once, never measured again
        after = next(v for v in run.variants if v.name == name)
        assert after.scenarios["offline"].metrics == before.scenarios["offline"].metrics
    assert all(v.ok and v.node["node_id"] for v in run.variants)


def test_a_node_killed_mid_sweep_costs_a_retry_not_the_sweep(tmp_path, cluster):
    """The worker node dies (its whole process tree, SIGKILL) while it measures: the round runs again on
    the head, and the sweep completes with every variant. Last in this module: the cluster has one node after."""
    address, _head, worker = cluster
    before = _node_ids(address)
    out = tmp_path / "run.json"
    driver = _cli([*_sweep_args(tmp_path, str(tmp_path / "r.db"), duration_ms=1500, rounds=2), "--launcher", "ray",
                   "--ray-address", address, "--json", str(out)], tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not _measuring(worker.pids()):
        time.sleep(0.2)
    assert _measuring(worker.pids()), "the worker node never got a measurement"
    worker.kill()
    output, _ = driver.communicate(timeout=600)
    print(output)  # shown with -s: which variants ran where after the node died
    assert driver.returncode == 0, output
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete" and len(doc["variants"]) == 3
    assert all(v["status"] == "ok" for v in doc["variants"]), output
    after = _node_ids(address)
    dead = [n for n, alive in after.items() if before.get(n) and not alive]
    assert len(dead) == 1
    # Whatever the worker was measuring when it died was measured again, whole, on the head.
    survivors = {n for n, alive in after.items() if alive}
    assert any(v["node"]["node_id"] in survivors for v in doc["variants"])


def _measuring(pids: list[int]) -> bool:
    """Whether one of these processes is a job's fresh process (the launcher's `spawn` child)."""
    for pid in pids:
        try:
            if "spawn_main" in " ".join(psutil.Process(pid).cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False
