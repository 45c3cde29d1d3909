"""`inferarena doctor`: what this machine is, and whether each runtime works on it, before any run.

In the spirit of `torch.utils.collect_env` and `vllm collect-env`: the CPU and the features that pick
kernels and precisions, the GPU, each runtime and server with its version and build, the known-bad
combinations found here with their fix, then a smoke inference per installed runtime. Each runtime is
looked at in its own process (the spawn launcher, as a run measures it), through inferarena's own plugin
(`Runtime.load` then `predict` or `generate`), so a runtime that crashes in native code shows as
`crashed (SIGSEGV)` and the others still run. What runs in that process is `inferarena.doctor_jobs`;
this module collects the facts, checks them and renders them.

Example: `inferarena doctor --json > doctor.json`, attached to a bug report.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from inferarena import __version__, envs, hardware, registry, runtimes
from inferarena.doctor_jobs import runtime_job
from inferarena.hardware import Gpu, Host
from inferarena.launchers import Launcher, Spawn
from inferarena.worker import Outcome

# The CPU features doctor names, present or not (/proc/cpuinfo flags; hardware.FEATURES spells them).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16")
BROKEN = ("failed", "crashed", "timed out")


@dataclass(frozen=True)
class Smoke:
    """One runtime's smoke inference. `seconds` is the wall time of its whole process (start, import,
    build facts, model, inference), what the user waited."""

    status: str  # ok | failed | crashed | timed out | skipped | not smoke-tested
    detail: str = ""  # what ran (ok), why (failed, skipped, not smoke-tested), the signal (crashed)
    seconds: float | None = None
    log_tail: str | None = None  # the end of the worker's output, where it failed

    @property
    def broken(self) -> bool:
        return self.status in BROKEN

    def label(self) -> str:
        """`ok (what ran)`, `failed: why`, `crashed (SIGSEGV)`, `timed out after 120 s`, `skipped: why`."""
        if not self.detail:
            return self.status
        form = {"ok": "ok ({})", "crashed": "crashed ({})", "timed out": "timed out {}"}.get(self.status)
        return form.format(self.detail) if form else f"{self.status}: {self.detail}"


@dataclass
class RuntimeFacts:
    name: str
    kind: str
    installed: bool
    version: str | None
    devices: tuple[str, ...]
    install_hint: str | None  # for a runtime that is not installed
    build: dict[str, Any] = field(default_factory=dict)  # its framework's build, read in the runtime's process
    smoke: Smoke | None = None

    def problem(self) -> tuple[str, str] | None:
        """(what failed, how) where this runtime is broken: its smoke test, or, where no smoke passed
        (--no-smoke, skipped, not smoke-tested), its build probe (the framework's import or build facts
        crashed, hung or raised: `build["error"]`). None where neither."""
        if self.smoke and self.smoke.broken:
            return "smoke test", self.smoke.label()
        if self.installed and "error" in self.build and not (self.smoke and self.smoke.status == "ok"):
            return "build probe", str(self.build["error"])
        return None


@dataclass(frozen=True)
class ServerFacts:
    name: str
    status: str  # set up | not set up | available | not installed | needs TOOL
    version: str | None
    how: str  # where it is, or how to get it


@dataclass(frozen=True)
class Finding:
    check: str
    problem: str
    fix: str


@dataclass
class Report:
    host: Host
    gpus: tuple[Gpu, ...]
    accelerator: str | None  # the GPU the driver lists (/proc), even where NVML lists none
    runtimes: list[RuntimeFacts]
    servers: list[ServerFacts] = field(default_factory=list)
    distributions: frozenset[str] = frozenset()  # installed pip distributions, lower case
    findings: list[Finding] = field(default_factory=list)
    smoked: bool = True

    def runtime(self, name: str) -> RuntimeFacts | None:
        return next((r for r in self.runtimes if r.name == name), None)

    def build(self, name: str) -> dict[str, Any]:
        found = self.runtime(name)
        return found.build if found and found.installed else {}

    @property
    def broken(self) -> list[RuntimeFacts]:
        return [r for r in self.runtimes if r.problem()]

    def as_dict(self) -> dict[str, Any]:
        from inferarena.environment import package_versions

        h = self.host
        return {"inferarena": __version__, "python": sys.version.split()[0], "os": platform.platform(),
                "host": {"cpu_model": h.cpu_model, "logical_cores": h.logical_cores, "physical_cores": h.physical_cores,
                         "memory_gb": h.memory_gb, "features": cpu_features(h), "native_bf16": h.has_bf16,
                         "native_fp16": h.has_fp16, "flags": " ".join(sorted(h.flags)),
                         "simulated": hardware.simulated() is not None},
                "gpus": [g.as_dict() for g in self.gpus], "accelerator": self.accelerator,
                "runtimes": [asdict(r) for r in self.runtimes], "servers": [asdict(s) for s in self.servers],
                "known_bad": [asdict(f) for f in self.findings], "smoked": self.smoked, "ok": not self.broken,
                "packages": package_versions()}


def cpu_features(host: Host) -> dict[str, bool]:
    return {hardware.FEATURES[flag]: flag in host.flags for flag in CPU_FEATURES}


# --- Known-bad combinations: each check says what it found here, or None. Add one line to add a check. ---

@dataclass(frozen=True)
class Check:
    name: str
    detect: Callable[[Report], str | None]
    fix: str


def _llama_amx(report: Report) -> str | None:
    if not report.build("llama_cpp").get("features", {}).get("AMX_INT8"):
        return None
    return ("llama.cpp here is built with AMX_INT8 = 1, and its AMX extra buffer crashes (SIGSEGV in "
            "ggml_backend_amx_mul_mat, upstream ggml-org/llama.cpp#20824)")


def _bf16_emulated(report: Report) -> str | None:
    wanting = [r.name for r in report.runtimes if r.installed and "bf16" in runtimes.get(r.name).precisions]
    if report.host.has_bf16 or not wanting:
        return None
    return (f"this CPU has no native BF16 (AVX512-BF16 or AMX-BF16): BF16 on {', '.join(wanting)} would be "
            "emulated, slower than FP32")


def _cuda_torch_without_gpu(report: Report) -> str | None:
    torch = report.build("torch") or report.build("transformers")
    if report.gpus or not torch.get("cuda_build"):
        return None
    return (f"torch is a CUDA {torch['cuda_build']} build, but no NVIDIA GPU is visible: it loads gigabytes of "
            "CUDA libraries for nothing")


def _gpu_unused(report: Report) -> str | None:
    if not report.gpus:
        return None
    reasons = [f"{r.name}: {why}" for r in report.runtimes if r.installed and "cuda" in r.devices
               and (why := runtimes.get(r.name).unavailable_on("cuda"))]
    torch = report.build("torch")
    if torch.get("cuda_build") and torch.get("cuda_available") is False:
        reasons.append(f"torch (CUDA {torch['cuda_build']}) sees no GPU although NVML lists one (the driver supports "
                       f"CUDA {report.gpus[0].cuda_version or '?'})")
    return f"a GPU is visible, but {'; '.join(reasons)}" if reasons else None


def _nvml_missing(report: Report) -> str | None:
    if report.gpus or not report.accelerator:
        return None
    return f"the driver lists {report.accelerator}, but NVML (nvidia-ml-py) does not, so --device cuda cannot see it"


def _two_ort_builds(report: Report) -> str | None:
    if not {"onnxruntime", "onnxruntime-gpu"} <= report.distributions:
        return None
    return "onnxruntime and onnxruntime-gpu are both installed: they share one module, and the last installed wins"


CHECKS: tuple[Check, ...] = (
    Check("llama_cpp_amx", _llama_amx, "inferarena runs llama.cpp with its extra buffers off on such a build (the "
          "llama_cpp knob extra_buffers: auto, the default; do not set it to on); in your own code pass "
          "use_extra_bufts=False to llama_cpp.Llama"),
    Check("bf16_emulated", _bf16_emulated, "inferarena plans no BF16 variant here; compare FP32 and INT8, or measure "
          "BF16 on a CPU that has it (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later)"),
    Check("cuda_torch_without_gpu", _cuda_torch_without_gpu, "install the CPU build: pip install torch --index-url "
          "https://download.pytorch.org/whl/cpu (constraints.txt pins it)"),
    Check("gpu_unused", _gpu_unused, "install the CUDA builds named (torch from download.pytorch.org/whl/cu12x, "
          "onnxruntime-gpu), or run --device cpu"),
    Check("nvml_missing", _nvml_missing, "pip install 'inferarena[gpu]' (nvidia-ml-py)"),
    Check("two_onnxruntime_builds", _two_ort_builds, "pip uninstall -y onnxruntime onnxruntime-gpu, then install "
          "the one you want"),
)


def known_bad(report: Report, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    return [Finding(c.name, problem, c.fix) for c in checks if (problem := c.detect(report))]


# --- Collecting the facts -------------------------------------------------------------------------------

def collect(names: list[str] | None = None, smoke: bool = True, timeout_s: float = 120.0,
            launcher: Launcher | None = None, on_start: Callable[[str], None] | None = None) -> Report:
    """Everything `inferarena doctor` prints: the host, then each runtime in its own process (its build,
    and with `smoke` a tiny inference), the servers and the known-bad combinations found."""
    launcher = launcher or Spawn()
    host = hardware.host()
    threads = host.logical_cores
    facts = [_runtime_facts(name) for name in (names or list(registry.RUNTIMES))]
    with tempfile.TemporaryDirectory(prefix="inferarena-doctor-") as logs:
        for item in facts:
            if item.installed:
                if on_start:
                    on_start(item.name)
                _look_at(item, smoke, threads, timeout_s, launcher, Path(logs))
    report = Report(host=host, gpus=hardware.gpus(), accelerator=hardware.accelerator(), runtimes=facts,
                    servers=servers(), distributions=_distributions(), smoked=smoke)
    report.findings = known_bad(report)
    return report


def _runtime_facts(name: str) -> RuntimeFacts:
    runtime = runtimes.get(name)
    installed = runtime.available()
    return RuntimeFacts(name=name, kind=runtime.kind, installed=installed,
                        version=runtime.version() if installed else None, devices=tuple(runtime.devices),
                        install_hint=None if installed else runtime.install_hint())


def _look_at(item: RuntimeFacts, smoke: bool, threads: int, timeout_s: float, launcher: Launcher, logs: Path) -> None:
    """The runtime's build and smoke from one worker; where that worker dies, its build from a second one."""
    log = logs / f"{item.name}.log"
    start = time.perf_counter()
    outcome = launcher.run(runtime_job, (item.name, smoke, threads), timeout_s, log)
    seconds = round(time.perf_counter() - start, 1)
    if outcome.ok:
        item.build = outcome.value["build"]
        if smoke:
            item.smoke = Smoke(**outcome.value["smoke"], seconds=seconds,
                               log_tail=_tail(log) if outcome.value["smoke"]["status"] in BROKEN else None)
        return
    item.smoke = _from_outcome(outcome, seconds, timeout_s) if smoke else None
    if smoke:  # the smoke took the worker down: read the build alone
        again = launcher.run(runtime_job, (item.name, False, threads), timeout_s, log)
        outcome = again if again.ok else outcome
    item.build = (outcome.value["build"] if outcome.ok else
                  {"error": _from_outcome(outcome, seconds, timeout_s).label()})


def _from_outcome(outcome: Outcome, seconds: float, timeout_s: float) -> Smoke:
    """A worker that did not report: crashed by a signal, exited early, timed out (after `timeout_s`, what
    doctor gave it), or failed outside the job (the launcher's one line says how)."""
    tail = outcome.detail or None
    if outcome.signal:
        return Smoke("crashed", outcome.signal, seconds, tail)
    if outcome.exit_code is not None:
        return Smoke("crashed", f"exit code {outcome.exit_code}", seconds, tail)
    if outcome.timed_out:
        return Smoke("timed out", f"after {timeout_s:.0f} s", seconds, tail)
    return Smoke("failed", outcome.error or "no result", seconds, tail)


def _tail(log: Path, lines: int = 20) -> str | None:
    if not log.is_file():
        return None
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or None


def _distributions() -> frozenset[str]:
    return frozenset((d.metadata["Name"] or "").lower().replace("_", "-") for d in importlib.metadata.distributions())


# What a server needs besides its pip environment: a tool on PATH, and how to get it.
SERVER_TOOLS = {"torchserve": ("java", "TorchServe's frontend is Java: install a JRE 11+ (apt-get install "
                               "default-jre-headless)")}
LLAMA_SERVER_DEPS = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def servers() -> list[ServerFacts]:
    """serve-bench's servers, as serve-bench finds them: each managed environment is made on first use
    (nothing is installed here), and llama-cpp-python's server runs in this one."""
    found = []
    for name in registry.SERVERS:
        env = registry.load(registry.SERVERS, name).environment
        pinned = next((r for r in env.requirements if "==" in r), env.requirements[0])
        tool, how = SERVER_TOOLS.get(name, (None, ""))
        if tool and shutil.which(tool) is None:
            found.append(ServerFacts(name, f"needs {tool}", pinned, how))
        elif envs.ready(env):
            found.append(ServerFacts(name, "set up", pinned, str(envs.python(env).parent.parent)))
        else:
            found.append(ServerFacts(name, "not set up", pinned, "its environment is made on first use (minutes) "
                                     f"by: inferarena serve-bench --servers {name}"))
    llama = importlib.util.find_spec("llama_cpp")  # found without importing it (and its native library)
    server = llama is not None and any((Path(p) / "server").is_dir() for p in llama.submodule_search_locations or ())
    version = f"llama-cpp-python=={v}" if (v := _version("llama-cpp-python")) else None
    if server and all(importlib.util.find_spec(m) for m in LLAMA_SERVER_DEPS):
        found.append(ServerFacts("llama_cpp_server", "available", version, "serve-bench --model smollm2 starts it"))
    else:
        found.append(ServerFacts("llama_cpp_server", "not installed", version,
                                 "pip install 'inferarena[llm]' (llama-cpp-python[server])"))
    return found


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- What the terminal shows ----------------------------------------------------------------------------

LABELS = {"mkldnn": "oneDNN", "cpu_capability": "CPU capability", "cuda_build": "CUDA build",
          "cuda_available": "CUDA available", "cpu_capabilities": "CPU capabilities", "features": "", "gpus": "GPUs"}


def build_text(build: dict[str, Any]) -> str:
    """A runtime's build facts on one line (llama.cpp's whole system_info stays in --json)."""
    parts = []
    for key, value in build.items():
        if key == "system_info":
            continue
        if isinstance(value, dict):
            value = " ".join(k for k, on in value.items() if on) or "none"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v).removesuffix("ExecutionProvider") for v in value) or "none"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None:
            value = "none"
        label = LABELS.get(key, key.replace("_", " "))
        parts.append(f"{label}: {value}" if label else str(value))
    return " · ".join(parts) or "-"


def render(report: Report, console) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    h = report.host
    features = cpu_features(h)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("inferarena", f"{__version__} · Python {sys.version.split()[0]} · {escape(platform.platform())}")
    cores = f"{h.logical_cores} logical cores" + (f" ({h.physical_cores} physical)" if h.physical_cores else "")
    simulated = " (simulated: INFERARENA_HOST; the smoke tests ran on the real CPU)" if hardware.simulated() else ""
    grid.add_row("CPU", f"{escape(h.cpu_model)} · {cores} · {h.memory_gb:g} GB memory{simulated}")
    grid.add_row("CPU features", "has " + (", ".join(n for n, on in features.items() if on) or "none of them")
                 + "; lacks " + (", ".join(n for n, on in features.items() if not on) or "none"))
    gpus = [f"{escape(g.name)} · {g.memory_gb:g} GB · driver {g.driver or '?'} · CUDA {g.cuda_version or '?'}"
            for g in report.gpus]
    grid.add_row("GPU", "\n".join(gpus) or "none" + (f" (the driver lists {escape(report.accelerator)}; NVML does not)"
                                                    if report.accelerator else ""))
    console.print(grid)
    console.print()

    table = Table(title="Runtimes", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    headers = ("runtime", "version", "build", "smoke", "s")[: 5 if report.smoked else 3]
    for header in headers:
        table.add_column(header, overflow="fold", justify="right" if header == "s" else "left")
    for r in report.runtimes:
        smoke = r.smoke.label() if r.smoke else "-"
        style = "red" if r.smoke and r.smoke.broken else "green" if r.smoke and r.smoke.status == "ok" else "dim"
        row = ((r.name, r.version or "?", escape(build_text(r.build)), f"[{style}]{escape(smoke)}[/]",
                f"{r.smoke.seconds:.1f}" if r.smoke and r.smoke.seconds is not None else "") if r.installed else
               (r.name, "-", f"[dim]not installed: {escape(r.install_hint or '')}[/]", "-", ""))
        table.add_row(*row[: len(headers)])
    console.print(table)

    table = Table(title="Servers (serve-bench)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("server", "status", "version", "where / how"):
        table.add_column(header, overflow="fold")
    for s in report.servers:
        table.add_row(s.name, s.status, escape(s.version or "-"), escape(s.how))
    console.print(table)

    if not report.findings:
        console.print("Known-bad combinations: none found here.")
    for f in report.findings:
        console.print(f"[yellow]known bad:[/] {escape(f.problem)} · [bold]fix:[/] {escape(f.fix)}", soft_wrap=True)
    if report.smoked:
        console.print("[dim]s: each runtime's own process, start to end (import, build facts, tiny model, inference).[/]")


def summary(report: Report) -> str:
    """The last line: whether every installed runtime works."""
    installed = [r for r in report.runtimes if r.installed]
    problems = [(r.name, *problem) for r in report.runtimes if (problem := r.problem())]
    if problems:
        what = " or ".join(sorted({failed for _, failed, _ in problems}, reverse=True))  # smoke test, build probe
        return (f"{len(problems)} of {len(installed)} installed runtimes failed their {what}: "
                + ", ".join(f"{name} {how}" for name, _, how in problems))
    if not report.smoked:
        return f"{len(installed)} runtimes installed; smoke tests not run (--no-smoke)."
    counts: dict[str, int] = {}
    for r in installed:
        status = r.smoke.status if r.smoke else "not smoke-tested"
        counts[status] = counts.get(status, 0) + 1
    ran = counts.pop("ok", 0)
    rest = "".join(f", {n} {status}" for status, n in counts.items())
    return f"All {len(installed)} installed runtimes work: {ran} passed a smoke inference{rest}."
