"""Managed environments for plugins whose dependencies clash with inferarena's own.

Some tools cannot share a venv with the rest of the stack. litert-torch caps typing-extensions below
4.13 (through xdsl), while pydantic 2.14 needs 4.16 or later. nvidia-pytriton needs numpy<2. A
plugin like that declares an `Environment` (a name and its pip requirements) and runs its work
there as a job, in a child process:

    env = Environment("litert-torch", ("litert-torch==0.10.0",), after=("typing-extensions>=4.16",))
    run_job(env, "inferarena.passes.litert_torch_job", {"weights": ..., "out": ...})

`ensure` creates the venv once under ~/.cache/inferarena/envs/NAME-HASH (or $INFERARENA_ENVS), with
torch pinned to the CPU build every pip line here must use, and reuses it after that. A job gets
inferarena's source on PYTHONPATH, so it can import the framework-free modules (model builders),
and it reads its arguments as JSON on stdin. Creation and job failures raise errors that name the
log and show its tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferarena.errors import InferarenaError, RuntimeUnavailable

TORCH_PIN = "torch==2.13.0"  # the CPU build on local disk; an unpinned torch pulls several GB of CUDA build


@dataclass(frozen=True)
class Environment:
    name: str
    requirements: tuple[str, ...]
    # A second pip step, for pins the resolver refuses together with the first (it warns, and they work).
    after: tuple[str, ...] = ()
    # Packages uninstalled last: hard dependencies that break the tool (optimum-intel's torchvision).
    remove: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        blob = json.dumps([self.requirements, self.after, TORCH_PIN, sys.version_info[:2], *([self.remove] if self.remove else [])])
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def root() -> Path:
    return Path(os.environ.get("INFERARENA_ENVS", Path.home() / ".cache" / "inferarena" / "envs"))


def python(env: Environment) -> Path:
    return root() / f"{env.name}-{env.key}" / "bin" / "python"


def ready(env: Environment) -> bool:
    return (python(env).parent.parent / "ready.json").is_file()


def ensure(env: Environment) -> Path:
    """The environment's python, creating the venv first if needed (minutes, once)."""
    folder = python(env).parent.parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers wanting the same env build it once
        if ready(env):
            return python(env)
        log = folder.parent / f"{folder.name}.log"
        steps = [[sys.executable, "-m", "venv", "--clear", str(folder)],
                 [str(python(env)), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH_PIN,
                  *env.requirements]]
        if env.after:
            steps.append([str(python(env)), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH_PIN,
                          *env.after])
        if env.remove:
            steps.append([str(python(env)), "-m", "pip", "uninstall", "-y", "-q", *env.remove])
        with log.open("w") as out:
            for step in steps:
                out.write("$ " + " ".join(step) + "\n")
                out.flush()
                if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                    raise RuntimeUnavailable(
                        f"could not create the '{env.name}' environment: {_tail(log)}",
                        f"see {log}; inferarena retries on the next run",
                    )
        freeze = subprocess.run([str(python(env)), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        (folder / "ready.json").write_text(json.dumps({"requirements": env.requirements, "after": env.after,
                                                       "packages": freeze.split()}))
        return python(env)


def source_path() -> str:
    """The folder holding the `inferarena` package: what a managed environment puts on PYTHONPATH."""
    import inferarena

    return str(Path(inferarena.__file__).resolve().parents[1])


def run_job(env: Environment, module: str, args: dict[str, Any], timeout_s: float = 1800) -> dict[str, Any]:
    """Run `python -m module` in the environment with `args` as JSON on stdin; its last stdout line
    is its JSON result. A job that fails raises with the tail of what it printed."""
    exe = ensure(env)
    environ = {**os.environ, "PYTHONPATH": source_path() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([str(exe), "-m", module], input=json.dumps(args), capture_output=True, text=True,
                          env=environ, timeout=timeout_s)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        error = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines
                     else f"exit code {done.returncode}")
        raise InferarenaError(f"{module} failed in the '{env.name}' environment: {error[:300]}",
                              f"rerun it there to see the whole trace: {exe} -m {module}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])[:400]
