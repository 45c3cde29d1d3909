"""Real services for the scale-out tests, started on loopback and stopped by the ids they were started
with: a PostgreSQL server (Debian's binaries, or `pgserver`'s) and a two-node Ray cluster."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(database: str = "inferarena", fsync: bool = False):
    """A throwaway PostgreSQL on a free loopback port; yields its URL. Postgres refuses to run as root,
    so as root it runs as the `postgres` user (Debian's package creates it) or `nobody`. Tests run it
    without fsync (nothing to keep); a benchmark of write rates keeps it, as a real server would."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        import pytest

        pytest.skip("no PostgreSQL binaries: apt-get install postgresql (.ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="inferarena-pg-"))
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(folder, user)
        shutil.chown(sockets, user)
        folder.chmod(0o755)
        as_user = ["runuser", "-u", user, "--"]
    port = free_port()
    log = folder / "server.log"
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    # Started directly (not by pg_ctl), so the process this fixture stops is the postmaster itself.
    server = subprocess.Popen([*as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                               "-k", str(sockets), "-c", f"fsync={'on' if fsync else 'off'}", "-c", "max_connections=50"],
                              stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_port(port, server, log)
        subprocess.run([*as_user, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        database], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        _stop_tree(server.pid, signal.SIGINT)  # fast shutdown of the postmaster, then what it leaves
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not listen on {port} in {timeout_s} s")


def _stop_tree(pid: int, sig: int = signal.SIGTERM, grace_s: float = 20) -> None:
    """Stop a process we started and every process under it: `sig` first, SIGKILL for what is left."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    tree = [root, *root.children(recursive=True)]
    for p in tree:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(tree, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


# -- Ray ---------------------------------------------------------------------------------------------

# `ray start` of a second node aborts under RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (that switch is for a
# one-node `ray.init()`, which it keeps on loopback); here each node is told its loopback address instead.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class RayNode:
    """One `ray start --block` process and everything it started: stopping it stops that node only
    (never `ray stop`, which stops every Ray process on the machine)."""

    def __init__(self, args: list[str], log: Path, temp_dir: Path):
        ray = Path(sys.executable).with_name("ray")
        env = {**os.environ, **RAY_ENV}
        env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # "0" makes a second node's `ray start` abort
        self.log = log
        self.process = subprocess.Popen([str(ray), "start", "--block", "--node-ip-address", "127.0.0.1",
                                         "--disable-usage-stats", *args], stdout=open(log, "ab"),
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def pids(self) -> list[int]:
        try:
            root = psutil.Process(self.process.pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """The node dies: SIGKILL to its whole tree at once, as a machine losing power would."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)

    def stop(self) -> None:
        _stop_tree(self.process.pid, signal.SIGTERM)


def _node_resources(cpus: int) -> list[str]:
    return ["--num-cpus", str(cpus), "--resources", json.dumps({"inferarena_node": 1})]


@contextmanager
def ray_cluster(worker_cpus: int = 1):
    """A head and a second worker node on 127.0.0.1, each offering one measurement slot; yields
    (address, head, worker)."""
    folder = Path(tempfile.mkdtemp(prefix="inferarena-ray-"))
    port = free_port()
    temp_dir = Path("/tmp") / f"ray-ia-{port}"  # Ray's socket paths must stay short
    head = RayNode(["--head", "--port", str(port), "--temp-dir", str(temp_dir), "--include-dashboard", "false",
                    *_node_resources(1)], folder / "head.log", temp_dir)
    address = f"127.0.0.1:{port}"
    worker = None
    try:
        _wait_port(port, head.process, head.log, 120)
        worker = RayNode(["--address", address, *_node_resources(worker_cpus)], folder / "worker.log", temp_dir)
        _wait_nodes(address, 2, head.log, worker.log)
        yield address, head, worker
    finally:
        if worker is not None:
            worker.stop()
        head.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_nodes(address: str, count: int, *logs: Path, timeout_s: float = 120) -> None:
    code = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True,
                             env={**os.environ, **RAY_ENV})
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise RuntimeError(f"Ray cluster did not reach {count} nodes: " + " | ".join(p.read_text()[-1000:] for p in logs))
