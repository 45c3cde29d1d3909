"""A model server as a child process we own: free ports on 127.0.0.1, readiness, and a stop that
leaves nothing behind.

Servers start in their own session (process group), so a stop reaches every process they spawn
(workers, stubs, a Java frontend's Python backends): SIGTERM to the group, then SIGKILL after a
grace period. Every started server is registered, and an atexit hook plus SIGTERM/SIGINT handlers
stop whatever is still running, so Ctrl-C or a crash in the benchmark does not leave servers up.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from inferarena.errors import InferarenaError

_RUNNING: set[ServerProcess] = set()


class ServerFailed(InferarenaError):
    """A server that did not start, or died: the message carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, name: str, command: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None,
                 leader_first: bool = False):
        self.name, self.command, self.log, self.cwd = name, command, log, cwd
        self.leader_first = leader_first
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        _install_handlers()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                            env=self.env, start_new_session=True)
        _RUNNING.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, urls: list[str], timeout_s: float, check: Callable[[], bool] | None = None) -> float:
        """Poll until every URL answers 200 (and `check` passes); seconds taken. Raises with the log tail
        if the server exits or the time runs out."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            if not self.alive():
                raise ServerFailed(f"{self.name} exited with code {self.process.returncode} while starting: "
                                   f"{self.tail()}", f"see {self.log}")
            if all(_ok(url) for url in urls) and (check is None or check()):
                self.check_loopback()
                return time.perf_counter() - started
            time.sleep(0.25)
        raise ServerFailed(f"{self.name} was not ready after {timeout_s:.0f} s: {self.tail()}", f"see {self.log}")

    def listening(self) -> list[tuple[str, int]]:
        """(address, port) of every socket that a process of this server's group listens on."""
        import psutil

        if self.process is None:
            return []
        found = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) != self.process.pid:
                    continue
                connections = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else \
                    proc.connections(kind="inet")
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
            found += [(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
        return sorted(set(found))

    def cpu_seconds(self) -> float:
        """User plus system CPU time of every live process in this server's group (for an energy estimate)."""
        import psutil

        if self.process is None:
            return 0.0
        total = 0.0
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == self.process.pid:
                    times = proc.cpu_times()
                    total += times.user + times.system
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        return total

    def check_loopback(self) -> None:
        """Servers the tool starts serve this machine only: one that listens beyond loopback is stopped."""
        import ipaddress

        def loopback(ip: str) -> bool:
            address = ipaddress.ip_address(ip.split("%")[0])
            mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 (Java's sockets) is loopback too
            return (mapped or address).is_loopback

        exposed = [(ip, port) for ip, port in self.listening() if not loopback(ip)]
        if exposed:
            self.stop(grace_s=3.0)
            where = ", ".join(f"{ip}:{port}" for ip, port in exposed)
            raise ServerFailed(f"{self.name} listened on {where}, reachable from other machines, so it was stopped",
                               "bind it to 127.0.0.1 (see its command in the log)")

    def tail(self, lines: int = 3) -> str:
        """The last error line of the log if there is one (servers log their shutdown after it), else its tail."""
        try:
            text = [line.strip() for line in self.log.read_text(errors="replace").strip().splitlines()]
        except OSError:
            return "(no log)"
        errors = [line for line in text if "Error" in line or "ERROR" in line or "Exception" in line]
        if errors:
            return errors[-1][-400:]
        return " | ".join(text[-lines:])[-400:] or "(empty log)"

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM (to the whole group, or to the leader only), SIGKILL to the group after `grace_s`."""
        _RUNNING.discard(self)
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            if self.leader_first:
                self.process.send_signal(signal.SIGTERM)
            else:
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(group):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.1)
            time.sleep(0.05)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self if self.process else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies of the group still count for killpg; a reaped leader with no members raises above.
    return True


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(grace_s=3.0)


_installed = False


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            stop_all()
            if callable(previous):
                previous(signum, frame)
            else:
                raise SystemExit(128 + signum)

        with contextlib.suppress(ValueError):  # not the main thread: atexit still covers a normal exit
            signal.signal(sig, handler)
