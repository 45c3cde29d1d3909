"""The device axis on a machine without a GPU: choosing the device, the one-line error for a missing GPU,
what runtimes and passes declare, what the plan skips, the environment card, and the GPU code paths that
can be reached without one (a fake NVML stands in for the driver). Real GPU runs are in test_gpu.py."""

import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferarena import environment, hardware, models, registry, runtimes, workloads
from inferarena.cli import app
from inferarena.config import RunConfig
from inferarena.errors import ConfigError
from inferarena.hardware import Gpu, Host
from inferarena.plan import plan
from inferarena.results import VariantResult, VariantSpec

HOST = Host(cpu_model="test CPU", logical_cores=2, physical_cores=2, flags=frozenset(), memory_gb=8.0)
H100 = Gpu("NVIDIA H100 80GB HBM3", 79.6, "580.159.04", "13.0", (9, 0))
A100 = Gpu("NVIDIA A100-SXM4-80GB", 79.2, "550.54", "12.4", (8, 0))
T4 = Gpu("Tesla T4", 14.6, "535.1", "12.2", (7, 5))
REPO = Path(__file__).resolve().parents[1]
no_gpu_here = pytest.mark.skipif(bool(hardware.gpus()), reason="this machine has a GPU: the no-GPU error cannot show")


@pytest.fixture
def gpu(monkeypatch):
    """Pretend NVML lists one GPU (an H100 unless the test swaps it), and that torch and ONNX Runtime are GPU builds."""
    found = [H100]
    monkeypatch.setattr(hardware, "gpus", lambda: tuple(found))
    for name in ("torch", "onnxruntime", "transformers"):
        monkeypatch.setattr(runtimes.get(name), "unavailable_on", classmethod(lambda cls, device: None))
    return found


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(hardware, "gpus", lambda: ())


def _plan(model, **config):
    cfg = RunConfig.parse({"model": str(model), "quick": True, "workload": {"num_samples": 16, "eval_samples": 4},
                           "pipelines": [], **config})
    artifact = models.resolve(cfg.model)
    return plan(cfg, artifact, workloads.build(artifact, cfg.workload, cfg.generation), HOST)


# -- choosing the device ------------------------------------------------------------------------------


def test_cpu_is_the_default_and_stays_cpu(no_gpu):
    assert RunConfig().device == "cpu"
    assert hardware.resolve_device("cpu") == "cpu"


def test_auto_picks_cuda_only_where_a_gpu_is_visible(monkeypatch, no_gpu):
    assert hardware.resolve_device("auto") == "cpu"
    monkeypatch.setattr(hardware, "gpus", lambda: (H100,))
    assert hardware.resolve_device("auto") == "cuda"
    assert hardware.resolve_device("cuda") == "cuda"


def test_cuda_without_a_gpu_is_a_config_error_with_its_fix(no_gpu):
    with pytest.raises(ConfigError, match="no CUDA GPU is visible") as caught:
        hardware.resolve_device("cuda")
    assert "--device cpu" in caught.value.fix
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        hardware.resolve_device("tpu")


def test_a_bad_device_value_is_a_field_error():
    with pytest.raises(ConfigError, match="field 'device'"):
        RunConfig.parse({"device": "tpu"})


def test_gpus_are_read_from_nvml(monkeypatch):
    class Nvml(types.ModuleType):
        def nvmlInit(self):
            pass

        def nvmlSystemGetDriverVersion(self):
            return b"580.159.04"

        def nvmlSystemGetCudaDriverVersion(self):
            return 13000

        def nvmlDeviceGetCount(self):
            return 1

        def nvmlDeviceGetHandleByIndex(self, i):
            return i

        def nvmlDeviceGetName(self, handle):
            return "NVIDIA H200"

        def nvmlDeviceGetMemoryInfo(self, handle):
            return types.SimpleNamespace(total=141 * 2**30, used=0)

        def nvmlDeviceGetCudaComputeCapability(self, handle):
            return (9, 0)

    monkeypatch.setitem(sys.modules, "pynvml", Nvml("pynvml"))
    hardware.gpus.cache_clear()
    try:
        (found,) = hardware.gpus()
    finally:
        hardware.gpus.cache_clear()
    assert found == Gpu("NVIDIA H200", 141.0, "580.159.04", "13.0", (9, 0))
    assert found.supports("fp8") and found.supports("bf16")
    assert not T4.supports("bf16") and not A100.supports("fp8") and A100.supports("bf16")


# -- the one-line error, through the real command ------------------------------------------------------


@no_gpu_here
def test_run_on_cuda_without_a_gpu_ends_in_one_line(mlp_onnx):
    done = subprocess.run([sys.executable, "-m", "inferarena", "run", "--device", "cuda", "--dry-run", "--model",
                           str(mlp_onnx)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda, but no CUDA GPU is visible")
    assert "fix:" in lines[0] and "Traceback" not in done.stderr + done.stdout


@no_gpu_here
@pytest.mark.parametrize("command", [["search", "--dry-run"], ["serve-bench"], ["peak"]])
def test_every_device_command_says_the_same(command, mlp_onnx, tmp_path):
    result = CliRunner().invoke(app, [*command, "--device", "cuda", "--model", str(mlp_onnx), "--db",
                                      str(tmp_path / "r.db")] if command[0] != "peak" else
                                [*command, "--device", "cuda", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "no CUDA GPU is visible" in result.output and "Traceback" not in result.output


def test_device_auto_without_a_gpu_plans_on_the_cpu(mlp_onnx, no_gpu):
    result = CliRunner().invoke(app, ["run", "--device", "auto", "--dry-run", "--model", str(mlp_onnx),
                                      "--runtimes", "onnxruntime", "--pipelines", "none"])
    assert result.exit_code == 0, result.output
    assert "device cpu" in result.output and "onnxruntime/fp32/fixed" in result.output


# -- what runtimes and passes declare --------------------------------------------------------------------


def test_runtimes_declare_their_devices_and_precisions_there():
    for name in registry.RUNTIMES:
        runtime = runtimes.get(name)
        assert "cpu" in runtime.devices and runtime.precisions_on("cpu") == runtime.precisions
        for device in runtime.devices:
            assert runtime.precisions_on(device), (name, device)
        # A runtime planned on a GPU is told so through `load(device=...)` (runtimes.base.on_device).
        if set(runtime.devices) != {"cpu"}:
            assert "device" in inspect.signature(runtime.load).parameters, name
    assert {"torch", "onnxruntime", "transformers"} <= {n for n in registry.RUNTIMES if "cuda" in runtimes.get(n).devices}
    assert runtimes.get("torch").precisions_on("cuda") == ("fp32", "bf16", "fp16")


def test_compile_is_a_knob_the_search_can_try_on_cuda():
    field = runtimes.get("torch").Knobs.model_fields["compile"]
    assert field.default == "none"  # the CPU runs as it always did
    assert field.json_schema_extra["space"] == ["none", "default", "reduce-overhead", "max-autotune"]
    assert field.json_schema_extra["devices"] == ["cuda"]
    with pytest.raises(ConfigError, match="compile"):
        runtimes.get("torch").validate_knobs({"compile": "fastest"})


def test_a_cpu_only_torch_build_is_not_planned_on_cuda():
    reason = runtimes.get("torch").unavailable_on("cuda")
    version = runtimes.get("torch").version() or ""
    assert (reason is not None) == version.endswith("+cpu")
    assert runtimes.get("torch").unavailable_on("cpu") is None


def test_fp8_is_a_cuda_recipe_for_hopper_class_gpus():
    from inferarena.passes.torchao_quant import TorchaoQuantize

    fp8 = TorchaoQuantize.Config(scheme="fp8_dynamic")
    assert TorchaoQuantize.precision(fp8) == "fp8"
    assert "not on the CPU" in TorchaoQuantize.unsupported_on(fp8, "cpu")
    assert "8.9" in TorchaoQuantize.unsupported_on(fp8, "cuda", A100)
    assert TorchaoQuantize.unsupported_on(fp8, "cuda", H100) is None
    int8 = TorchaoQuantize.Config(scheme="int8_dynamic")
    assert TorchaoQuantize.unsupported_on(int8, "cpu") is None and TorchaoQuantize.precision(int8) == "int8"


# -- the plan on a device ----------------------------------------------------------------------------------


def test_plan_skips_runtimes_without_the_device_and_says_why(mlp_onnx, gpu):
    specs, notes = _plan(mlp_onnx, device="cuda", runtimes=[{"name": "onnxruntime"}, {"name": "openvino"}])
    assert [(s.name, s.device) for s in specs] == [("onnxruntime/fp32/fixed", "cuda")]
    assert "skipped runtime openvino: it runs on cpu, not cuda" in notes


def test_plan_on_cpu_is_unchanged(mlp_onnx, gpu):
    specs, notes = _plan(mlp_onnx, runtimes=[{"name": "onnxruntime"}, {"name": "openvino"}])
    assert {s.device for s in specs} == {"cpu"} and {s.runtime for s in specs} == {"onnxruntime", "openvino"}
    assert not any("not cuda" in n for n in notes)


def test_no_runtime_on_the_device_is_a_config_error(mlp_onnx, gpu):
    with pytest.raises(ConfigError, match="none of this run's runtimes \\(openvino\\) runs on cuda") as caught:
        _plan(mlp_onnx, device="cuda", runtimes=[{"name": "openvino"}])
    assert "--device cpu" in caught.value.fix


def test_a_runtime_whose_gpu_build_is_missing_is_skipped(mlp_onnx, monkeypatch):
    monkeypatch.setattr(hardware, "gpus", lambda: (H100,))
    monkeypatch.setattr(runtimes.get("onnxruntime"), "unavailable_on",
                        classmethod(lambda cls, device: "its CUDA execution provider comes with onnxruntime-gpu"))
    with pytest.raises(ConfigError, match="runs on cuda"):
        _plan(mlp_onnx, device="cuda", runtimes=[{"name": "onnxruntime"}])


def test_precisions_follow_the_gpu(tiny_bert, gpu):
    specs, _ = _plan(tiny_bert, device="cuda", runtimes=[{"name": "torch"}], workload={"shapes": ["fixed"]})
    assert [s.precision for s in specs] == ["fp32", "bf16", "fp16"] and {s.device for s in specs} == {"cuda"}
    gpu[0] = T4
    specs, notes = _plan(tiny_bert, device="cuda", runtimes=[{"name": "torch"}], workload={"shapes": ["fixed"]})
    assert [s.precision for s in specs] == ["fp32", "fp16"]
    assert "skipped torch/bf16: this GPU (Tesla T4) has no native bf16 support" in notes
    with pytest.raises(ConfigError, match="no precision 'fp16' on cpu"):
        _plan(tiny_bert, runtimes=[{"name": "torch", "precisions": ["fp16"]}])


def test_fp8_pipelines_are_planned_only_where_they_run(tiny_bert, gpu):
    fp8 = {"pipelines": [{"name": "fp8", "passes": [{"name": "torchao_quantize", "config": {"scheme": "fp8_dynamic"}}],
                          "runtimes": ["torch"]}], "runtimes": [{"name": "torch", "precisions": []}],
           "workload": {"shapes": ["fixed"]}}
    specs, _ = _plan(tiny_bert, device="cuda", **fp8)
    assert [(s.name, s.precision, s.device, s.lossy) for s in specs] == [("torch/fp8/fixed@fp8", "fp8", "cuda", True)]
    gpu[0] = A100
    with pytest.raises(ConfigError, match="no variant"):
        _plan(tiny_bert, device="cuda", **fp8)
    specs, notes = _plan(tiny_bert, device="cuda", **{**fp8, "runtimes": [{"name": "torch", "precisions": ["bf16"]}]})
    assert [s.name for s in specs] == ["torch/bf16/fixed"]
    assert any("pipeline fp8" in n and "8.9" in n and "A100" in n for n in notes)


# -- what is stored and shown -------------------------------------------------------------------------------


def test_the_device_is_stored_with_each_variant():
    spec = VariantSpec(name="torch/bf16/fixed", runtime="torch", precision="bf16", shape="fixed", knobs={},
                       device="cuda")
    result = VariantResult.of(spec)
    assert result.device == "cuda"
    assert VariantResult.from_row(result.to_row(), {}).device == "cuda"
    legacy = {**result.to_row(), "build_json": json.dumps({"rounds": 1})}  # stored before devices were
    assert VariantResult.from_row(legacy, {}).device == "cpu"


def test_the_reproduce_config_names_the_device(tmp_path):
    from inferarena.kinds.predict import Predict
    from inferarena.recommend import _write_config
    from inferarena.results import RunRecord

    run = RunRecord(run_id=7, model="m", config=RunConfig(device="auto").model_dump(mode="json"))
    pick = VariantResult(name="torch/bf16/fixed", runtime="torch", precision="bf16", shape="fixed",
                         knobs={"compile": "reduce-overhead", "threads": 2}, device="cuda")
    written = RunConfig.from_yaml(Path(_write_config(run, pick, Predict.profiles["latency"], tmp_path)))
    assert written.device == "cuda" and written.runtimes[0].knobs == {"compile": "reduce-overhead"}


def test_environment_card_without_a_gpu_has_no_gpu_entry(no_gpu):
    card = environment.capture()
    assert "gpus" not in card and card["cpu_model"]


def test_environment_card_records_the_gpu(gpu):
    (entry,) = environment.capture()["gpus"]
    assert entry == {"name": "NVIDIA H100 80GB HBM3", "memory_gb": 79.6, "driver": "580.159.04",
                     "cuda_version": "13.0", "compute_capability": "9.0"}


# -- GPU code paths reachable without a GPU --------------------------------------------------------------------


def test_nvml_energy_is_labelled_measured_on_cuda(monkeypatch):
    from test_energy import FakeNvml

    from inferarena.trackers.energy import EnergyMeter, GpuTracker

    class WithProcesses(FakeNvml):
        def nvmlDeviceGetProcessUtilization(self, handle, since):
            return [types.SimpleNamespace(pid=1, timeStamp=since + 10, smUtil=70 + 10 * handle, memUtil=5)]

    monkeypatch.setitem(sys.modules, "pynvml", WithProcesses())
    meter = EnergyMeter(HOST, idle_s=0, device="cuda")
    assert meter.source == "nvml" and meter.basis.startswith("measured: NVML")
    with meter.track() as tracked:
        pass
    assert tracked.result.energy_source == "nvml"
    (tracker,) = meter.resource_trackers()
    assert isinstance(tracker, GpuTracker)
    tracker.interval_s = 0.01
    with tracker:
        pass
    assert tracker.result.gpu_sm_util_pct_avg == 75.0 and tracker.result.gpu_mem_used_mb_peak == 1024.0
    assert EnergyMeter(HOST, idle_s=0, device="cpu", rapl_root=Path("/nonexistent")).source == "estimate"


def test_torch_on_cuda_without_a_cuda_torch_fails_in_one_line(tiny_bert):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a GPU here")
    runtime = runtimes.get("torch")
    artifact = models.resolve(str(tiny_bert))
    with pytest.raises(ConfigError, match="sees no CUDA GPU"):
        runtime().load(artifact, "bf16", runtime.validate_knobs({"threads": 1}), {}, device="cuda")


def test_gpu_peak_without_a_cuda_torch_is_a_config_error(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a GPU here")
    from inferarena.trackers import peak

    with pytest.raises(ConfigError, match="no GPU peak"):
        peak.load_or_measure(tmp_path, HOST, 1, device="cuda")


def test_cpu_torch_session_is_unchanged_by_the_gpu_knobs(tiny_bert, one_thread):
    from inferarena.config import ShapeStrategy

    cfg = RunConfig.parse({"model": str(tiny_bert), "workload": {"num_samples": 8, "max_length": 16}})
    artifact = models.resolve(cfg.model)
    workload = workloads.build(artifact, cfg.workload, cfg.generation)
    runtime = runtimes.get("torch")
    session = runtime().load(artifact, "fp32", runtime.validate_knobs({"threads": 1}),
                             workload.input_shapes(ShapeStrategy.fixed))
    out = session.predict(workload.collate([0, 1], ShapeStrategy.fixed))
    assert session.run is session.module and session.info == {"threads": 1, "autocast": None, "streams": 1}
    assert next(iter(out.values())).shape == (2, 32)


def test_the_run_header_shows_the_device_and_gpu():
    import io

    from rich.console import Console

    from inferarena.report import console as report_console
    from inferarena.results import RunRecord

    env = {**environment.capture(), "device": "cuda", "gpus": [H100.as_dict()]}
    out = io.StringIO()
    report_console.render_run(RunRecord(run_id=1, model="m", config={}, environment=env), Console(file=out, width=200))
    assert "Device: cuda · NVIDIA H100 80GB HBM3, 79.6 GB, driver 580.159.04, CUDA 13.0" in out.getvalue()


# -- the prepared GPU check, as far as it goes without a GPU ------------------------------------------------------


def _document(variants, **environment):
    return {"environment": {"device": "cuda", "gemm_peak_gflops": {"bf16": 800_000.0}, **environment},
            "variants": variants}


def _variant(name, precision, compile="none", status="ok", **metrics):
    return {"name": name, "precision": precision, "status": status, "knobs": {"compile": compile}, "error": None,
            "metrics": {"offline.energy_source": "nvml", **metrics}}


def test_device_summary_puts_the_targets_side_by_side():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import device_summary
    finally:
        sys.path.remove(str(REPO / "scripts"))
    eager = _document([_variant("torch/fp32/fixed", "fp32", **{"offline.energy_j_per_query": 0.02}),
                       _variant("torch/bf16/fixed", "bf16", **{"single_stream.latency_ms_p50": 2.0,
                                                              "offline.gflops_per_s": 300_000.0})],
                      gpus=[H100.as_dict()])
    compiled = _document([_variant("torch/bf16/fixed+compile=reduce-overhead", "bf16", "reduce-overhead",
                                   **{"single_stream.latency_ms_p50": 0.5, "offline.gflops_per_s": 420_000.0,
                                      "offline.energy_j_per_query": 0.004}),
                          _variant("torch/fp8/fixed+compile=reduce-overhead@torchao-fp8", "fp8", "reduce-overhead",
                                   status="failed")])
    summary = device_summary.summarize([eager, compiled], {"hbm": {"read_gb_per_s": 4000.0}})
    targets = summary["targets"]
    assert targets["best_offline_vs_bf16_peak"] == {"variant": "torch/bf16/fixed+compile=reduce-overhead",
                                                    "pct_of_bf16_peak": 52.5, "met_50_pct": True}
    assert targets["b1_latency_ms_p50"]["eager_over_compiled"] == 4.0
    joules = targets["j_per_1000_sequences"]
    assert joules["eager_fp32"]["j"] == pytest.approx(20.0) and joules["compiled_bf16"]["j"] == pytest.approx(4.0)
    assert joules["fp8"] is None and summary["failed"]  # a failed variant gives no figure, and is listed
    assert summary["energy_source_nvml_on_every_ok_variant"] and summary["gpu"]["name"] == H100.name


def test_device_check_rejects_unknown_arguments():
    done = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh"), "--fast"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr


@pytest.mark.slow
def test_device_check_dry_run_plans_both_runs_on_the_cpu(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh"), "--dry-run"], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OUT": str(tmp_path),
                                                       "PYTHON": sys.executable})
    log = (tmp_path / "steps.log").read_text()
    assert done.returncode == 0, log[-3000:]
    for name in ("versions", "runtimes", "model", "leaderboard-plan", "compiled-plan", "gpu-tests"):
        assert f"OK {name}" in log, name
    assert "torch/bf16/fixed+compile=reduce-overhead" in log and "bert-tiny-random-init" in log
    assert "skipped pipeline torchao-fp8: torchao FP8 runs on CUDA GPUs" in log


def test_a_cpu_picks_deploy_line_leaves_out_knobs_declared_for_gpus():
    """ORT's `gpu_provider` means something on cuda only: a CPU pick's Deploy line does not carry it."""
    from inferarena.runtimes.base import knobs_on_device

    ort = runtimes.get("onnxruntime").Knobs
    values = {"threads": 2, "streams": 1, "gpu_provider": "cuda"}
    assert knobs_on_device(ort, values, "cpu") == {"threads": 2, "streams": 1}
    assert knobs_on_device(ort, values, "cuda") == values
