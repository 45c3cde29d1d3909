"""Run generated Python against unit tests, in a separate process that cannot do much harm.

The child is `python -I -S` (isolated: no user site, no PYTHON* variables, no site-packages) with an
empty environment, its working directory a fresh private temp dir, and rlimits on address space,
CPU seconds, file size and open files; a wall-clock timeout kills its whole process group. Before the
generated code runs, an audit hook (PEP 578) refuses opening files outside the temp dir (reading the
standard library excepted), sockets, subprocesses, fork/exec, signals to other processes and ctypes.

This stops the mistakes and accidents of generated code (an infinite loop, a stray `open('/etc/...')`,
a network call). Audit hooks are not a security boundary against code written to escape: run code
you distrust in a container or VM as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_HARNESS = r'''
import json, os, sys
ROOT = os.path.realpath(os.getcwd())
with open("job.json") as f:
    JOB = json.load(f)
READABLE = tuple(sorted({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                              sys.base_exec_prefix, os.path.dirname(os.__file__))}))
BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
           "os.forkpty", "os.kill", "os.killpg", "pty.", "ctypes.", "_posixsubprocess.", "signal.pthread_kill",
           "winreg.", "webbrowser.", "sys.addaudithook", "os.add_dll_directory", "shutil.rmtree")
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def inside(path):
    real = os.path.realpath(path)
    return real == ROOT or real.startswith(ROOT + os.sep)

def readable(path):
    return (os.path.realpath(path) + os.sep).startswith(READABLE)

def hook(event, args):
    if event.startswith(BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in ("socket", "_socket", "ctypes", "_ctypes", "ssl", "_ssl"):
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open":
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        path = os.fsdecode(path)
        writing = bool(mode and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
        if inside(path) or (not writing and readable(path)):
            return
        raise PermissionError(f"sandbox: opening {path} is not allowed")
    if event in ("os.listdir", "os.scandir", "os.chdir", "os.remove", "os.rename", "os.rmdir", "os.mkdir",
                 "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "os.utime"):
        path = args[0] if args else None
        if path is None or isinstance(path, int) or inside(os.fsdecode(path)):
            return
        if event in ("os.listdir", "os.scandir") and readable(os.fsdecode(path)):
            return  # the import system lists the standard library's folders
        raise PermissionError(f"sandbox: {event} on {os.fsdecode(path)} is not allowed")

out = {"passed": 0, "total": len(JOB["tests"]), "error": None, "blocked": False}
sys.addaudithook(hook)
namespace = {"__name__": "__candidate__"}
def record(exc, where):
    if out["error"] is None:
        out["error"] = f"{where}: {type(exc).__name__}: {exc}"[:300]
        out["blocked"] = isinstance(exc, PermissionError) and str(exc).startswith("sandbox:")
try:
    exec(compile(JOB["code"], "<candidate>", "exec"), namespace)
except BaseException as exc:  # the candidate's own failure, reported, not raised
    record(exc, "defining the code")
else:
    for test in JOB["tests"]:
        try:
            exec(compile(test, "<test>", "exec"), namespace)
            out["passed"] += 1
        except BaseException as exc:
            record(exc, test)
sys.stdout.write("\n" + JOB["marker"] + json.dumps(out) + "\n")
'''


@dataclass
class SandboxResult:
    passed: int
    total: int
    error: str | None  # the first failure, one line
    timed_out: bool = False
    blocked: bool = False  # the sandbox refused an operation
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.passed == self.total and not self.timed_out and not self.blocked

    @property
    def score(self) -> float:
        return 0.0 if self.timed_out or self.blocked or not self.total else self.passed / self.total


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run_tests(code: str, tests: list[str] | tuple[str, ...], timeout_s: float = 5.0, memory_mb: int = 256,
              cpu_s: int | None = None) -> SandboxResult:
    """Define `code`, then run each test line against it; a test passes when it raises nothing."""
    marker = f"@@inferarena-sandbox-{os.getpid()}-{time.monotonic_ns()}@@"
    with tempfile.TemporaryDirectory(prefix="inferarena-sandbox-") as tmp:
        root = Path(tmp)
        (root / "harness.py").write_text(_HARNESS)
        (root / "job.json").write_text(json.dumps({"code": code, "tests": list(tests), "marker": marker}))
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-I", "-S", "harness.py"], cwd=root, env={}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=_limits(memory_mb, cpu_s or max(1, int(timeout_s))))
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return SandboxResult(0, len(tests), f"timed out after {timeout_s:g} s", timed_out=True,
                                 seconds=time.perf_counter() - started)
        finally:
            _kill(proc)
        seconds = time.perf_counter() - started
    text = stdout.decode(errors="replace")
    if marker in text:
        found = json.loads(text.rsplit(marker, 1)[1].splitlines()[0])
        return SandboxResult(found["passed"], found["total"], found["error"], blocked=found["blocked"], seconds=seconds)
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return SandboxResult(0, len(tests), "stopped at its CPU time limit", timed_out=True, seconds=seconds)
    tail = stderr.decode(errors="replace").strip().splitlines()
    return SandboxResult(0, len(tests), f"the process died (exit {proc.returncode}): {tail[-1] if tail else 'no output'}"[:300],
                         seconds=seconds)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
