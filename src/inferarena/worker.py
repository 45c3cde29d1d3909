"""Run one function in its own process, with a timeout. A crash, hang or OOM becomes an Outcome.

Each candidate is built and measured in a fresh `spawn`ed process, so a runtime that segfaults or
leaks cannot take the sweep down, and each gets a clean memory and thread state.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inferarena.errors import InferarenaError


@dataclass
class Outcome:
    ok: bool
    value: Any = None
    error: str | None = None  # one line, for tables
    detail: str | None = None  # traceback or the tail of the worker's log
    node: dict | None = None  # where it ran (`hardware.node_info`), set by the launcher
    # How a worker that never reported ended, as data (`error` says it in words for tables): the signal
    # it died of ("SIGSEGV"), the code it exited with, or whether the launcher killed it at its timeout.
    signal: str | None = None
    exit_code: int | None = None
    timed_out: bool = False


def run_isolated(fn: Callable, args: tuple, timeout_s: float, log_path: Path | None = None) -> Outcome:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, args, str(log_path) if log_path else None, os.getpid()),
                              daemon=True)
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout_s):
            try:
                status, payload, detail = receiver.recv()
            except EOFError:
                status = None
        else:
            _kill(process)
            return Outcome(False, error=f"timed out after {timeout_s:.0f} s", detail=_tail(log_path), timed_out=True)
        process.join(30)
        if status is None:
            return _died(process.exitcode, _tail(log_path))
        if status == "ok":
            return Outcome(True, value=payload)
        return Outcome(False, error=payload, detail=detail)
    finally:
        if process.is_alive():
            _kill(process)
        receiver.close()


def _die_with(parent_pid: int) -> None:
    """Ask Linux to end this worker when the process that started it ends, however it ends: a `kill` of
    `inferarena agents` used to leave its job decoding on, unseen, holding the cores (daemon workers are
    only ended by a parent that exits normally). Elsewhere, nothing to do."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent ended before the request took hold
        os._exit(1)


def _child(sender, fn: Callable, args: tuple, log_path: str | None, parent_pid: int | None = None) -> None:
    if parent_pid is not None:
        _die_with(parent_pid)
    if log_path:
        # Frameworks print freely; keep the terminal for the progress bar and the worker's log for errors.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    try:
        result = ("ok", fn(*args), None)
    except BaseException as exc:  # noqa: BLE001 - everything becomes the candidate's failure
        result = ("error", *failure(exc))
    sender.send(result)
    sender.close()


def failure(exc: BaseException) -> tuple[str, str | None]:
    """A job's exception as (one line for tables, the traceback where it helps)."""
    if isinstance(exc, InferarenaError):
        return str(exc), None
    if isinstance(exc, MemoryError):
        return "out of memory", traceback.format_exc()
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return (f"{type(exc).__name__}: {message}" if message else type(exc).__name__), traceback.format_exc()


def _kill(process) -> None:
    process.kill()
    process.join(10)


def _died(exitcode: int | None, detail: str | None) -> Outcome:
    """A worker that ended without reporting: killed by a signal (multiprocessing's negative exit code),
    or exited. `exitcode` is None where it was still running after the join's wait."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (likely out of memory)" if name == "SIGKILL" else ""
        return Outcome(False, error=f"worker crashed with {name}{hint}", detail=detail, signal=name)
    return Outcome(False, error=f"worker exited with code {exitcode} before reporting", detail=detail,
                   exit_code=exitcode)


def _tail(log_path: Path | None, lines: int = 20) -> str | None:
    if not log_path or not Path(log_path).is_file():
        return None
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:])
