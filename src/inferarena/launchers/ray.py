"""The Ray launcher (`--launcher ray`): each build, reference and measurement round a Ray task.

- A measurement holds a whole node: every node offers one `inferarena_node` slot (a custom resource)
  and a round asks for it, so two timings never share a machine's cores. Builds, the reference and
  the GEMM peaks ask for one CPU and may share a node.
- Inside its task a job runs as under `spawn`: a fresh process with a timeout (`worker.run_isolated`),
  so a crash is that job's failure and every round starts clean.
- A variant's rounds stay on the node its first round ran on (`lane`): rounds from two machines are
  never merged. A node that dies under a first round: Ray runs the round again elsewhere (`retries`
  times); under a later round: `PlaceLost`, and the variant is measured again from its first round.
- Artifacts and logs travel by path: the cache folder and the DB's folder must be shared by every
  node (NFS or the like; on one machine they are). Content hashes stay the cache keys.

With no address, Ray starts on this machine, on loopback (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, no
auth, no dashboard), as one node with one slot, and `close()` stops what it started. Ray is imported
here only (the `ray` extra).
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from inferarena.errors import ConfigError, RuntimeUnavailable
from inferarena.hardware import host, node_info
from inferarena.launchers import Launcher, PlaceLost
from inferarena.worker import Outcome, run_isolated

RESOURCE = "inferarena_node"  # one per node: a measurement holds it for the whole round


def _task(fn, args, timeout_s: float, log_path: str | None) -> Outcome:
    """What runs on a node: the job in a fresh process, and where it ran."""
    import ray

    node = {**node_info(), "node_id": ray.get_runtime_context().get_node_id()}
    # Ray sets OMP_NUM_THREADS to the task's CPU count (1 for a zero-CPU task); the job sets its own threads.
    os.environ.pop("OMP_NUM_THREADS", None)
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with _no_main_script():
        outcome = run_isolated(fn, args, timeout_s, Path(log_path) if log_path else None)
    outcome.node = node
    return outcome


@contextmanager
def _no_main_script():
    """multiprocessing's spawn runs the parent's main script again in the child: in a Ray worker that
    is Ray's default_worker.py, which imports all of Ray (0.5 s a round, measured). A job needs nothing
    from it (jobs are functions of inferarena's modules), so the child is started without it."""
    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


class RayLauncher(Launcher):
    name = "ray"

    def __init__(self, address: str | None = None, retries: int = 2):
        try:
            import ray
        except ImportError:
            raise RuntimeUnavailable("--launcher ray needs Ray", "pip install 'inferarena[ray]'") from None
        self.address, self.retries = address, retries
        self._ray = ray
        self._owns = not ray.is_initialized()  # else a caller (a notebook, a script) connected: theirs to close
        if self._owns and address is None:
            # Ray's own switches for a one-machine cluster: loopback only, no token to hand around. The
            # processes Ray starts inherit them; this process gets its environment back.
            with _environment(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0"):
                ray.init(num_cpus=host().logical_cores, resources={RESOURCE: 1}, include_dashboard=False,
                         log_to_driver=False, logging_level="ERROR", namespace="inferarena")
        elif self._owns:
            _reachable(address)  # ray.init waits minutes on a head that is not there
            try:
                with _environment(RAY_USAGE_STATS_ENABLED="0"):
                    ray.init(address=address, log_to_driver=False, logging_level="ERROR", namespace="inferarena")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {address} ({str(exc).splitlines()[0][:200]})",
                                  "start it (`ray start --head --resources='{\"inferarena_node\": 1}'`) or drop "
                                  "--ray-address to start Ray on this machine") from None
        self.slots = int(ray.cluster_resources().get(RESOURCE, 0))
        if not self.slots:
            self.close()
            raise ConfigError(f"no node of the Ray cluster at {address} offers the {RESOURCE} resource, so no "
                              "measurement could hold a node", "start each node with `ray start ... "
                              "--resources='{\"inferarena_node\": 1}'`")
        self._remote = ray.remote(_task)

    def run(self, fn, args, timeout_s, log_path=None):
        """A build, the reference or the peaks: one CPU of any node."""
        ref = self._remote.options(num_cpus=1, max_retries=self.retries).remote(fn, args, timeout_s, _str(log_path))
        return self._get(ref)

    def lane(self, node: dict | None = None) -> Launcher:
        return _Lane(self, (node or {}).get("node_id"))

    def describe(self) -> dict:
        alive = [n for n in self._ray.nodes() if n.get("Alive")]
        return {"launcher": self.name, "ray_address": self.address or "local", "ray_version": self._ray.__version__,
                "ray_nodes": len(alive), "measurement_slots": self.slots}

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()  # stops the local cluster it started; from a remote one it only disconnects

    def _get(self, ref, pinned: bool = False) -> Outcome:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as exc:  # the task's own code raised (the job's failures come back as Outcomes)
            return Outcome(False, error=f"Ray task failed: {_line(exc)}", detail=str(exc))
        except exceptions.RayError as exc:  # the node, its worker or the object was lost
            if pinned:
                raise PlaceLost(f"node lost ({type(exc).__name__})") from None
            return Outcome(False, error=f"node lost after {self.retries} retries ({type(exc).__name__}: {_line(exc)})",
                           detail=str(exc))


class _Lane(Launcher):
    """One variant's rounds: the first wherever a slot is free, the rest on that same node."""

    name = "ray"

    def __init__(self, parent: RayLauncher, node_id: str | None):
        self.parent, self.node_id = parent, node_id

    def run(self, fn, args, timeout_s, log_path=None):
        options: dict = {"num_cpus": 0, "resources": {RESOURCE: 1}, "max_retries": self.parent.retries}
        pinned = self.node_id is not None
        if pinned:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options |= {"scheduling_strategy": NodeAffinitySchedulingStrategy(self.node_id, soft=False),
                        "max_retries": 0}
        outcome = self.parent._get(self.parent._remote.options(**options).remote(fn, args, timeout_s, _str(log_path)),
                                   pinned)
        if outcome.node and self.node_id is None:
            self.node_id = outcome.node["node_id"]
        return outcome


def _reachable(address: str) -> None:
    """A HOST:PORT head must accept a connection (Ray's own `auto` and ray:// forms are left to Ray)."""
    host_name, _, port = address.rpartition(":")
    if not host_name or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host_name, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})",
                          "start its head (`ray start --head --port PORT --resources='{\"inferarena_node\": 1}'`), "
                          "check --ray-address, or drop it to start Ray on this machine") from None


@contextmanager
def _environment(**values: str):
    """These variables set (where the user has not set them) while the block runs, then as they were."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _str(path) -> str | None:
    return str(path) if path else None


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:200] if text else type(exc).__name__
