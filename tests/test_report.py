"""Reports (HTML, Markdown, CSV, JSON) and run comparison, on real runs of tiny models."""

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import quick_config
from typer.testing import CliRunner

from inferarena.cli import app
from inferarena.errors import ConfigError
from inferarena.report.compare import ALIASES, parse_fail_on, regressions
from inferarena.report.html import pareto_front
from inferarena.stats import latency_change, throughput_change

runner = CliRunner()
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_deep_onnx(path: Path, layers: int, width: int = 384) -> Path:
    """Same input and output as make_mlp_onnx's model (x[B,4] -> y[B,3]), but `layers` wide matmuls between."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, width)).astype(np.float32) / 2, "w_in"),
             numpy_helper.from_array(rng.standard_normal((width, 3)).astype(np.float32) / width**0.5, "w_out")]
    nodes, prev = [helper.make_node("MatMul", ["x", "w_in"], ["h_in"])], "h_in"
    for i in range(layers):
        inits.append(numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32) / width**0.5, f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        prev = f"r{i}"
    nodes.append(helper.make_node("MatMul", [prev, "w_out"], ["y"]))
    graph = helper.make_graph(nodes, "deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run 1 on a small model; run 2, same config and path, after the model got much slower."""
    tmp = tmp_path_factory.mktemp("runs")
    model, db = tmp / "model.onnx", tmp / "r.db"
    cfg = quick_config(tmp, scenarios=["single_stream", "offline"], runtimes=[{"name": "onnxruntime"}])
    make_deep_onnx(model, layers=1)
    for layers in (1, 12):
        make_deep_onnx(model, layers=layers)
        result = invoke("run", "--model", model, "--config", cfg, "--db", db, "--cache-dir", tmp / "cache")
        assert result.exit_code == 0, result.output
        assert f"Report: {tmp / 'inferarena-run-'}" in result.output  # the HTML report is written by default
    return db


def test_compare_flags_the_planted_regression(two_runs):
    db = two_runs
    result = invoke("compare", "1", "2", "--db", db)
    assert result.exit_code == 0 and "worse" in result.output
    gated = invoke("compare", "1", "2", "--db", db, "--fail-on", "p50:+5%,throughput:-5%")
    assert gated.exit_code == 3
    assert "regression:" in gated.output and "single_stream p50" in gated.output
    same = invoke("compare", "1", "1", "--db", db, "--fail-on", "p99:+5%")
    assert same.exit_code == 0 and "0 better, 0 worse" in same.output


def test_report_formats(two_runs, tmp_path):
    db = two_runs
    md = tmp_path / "r.md"
    assert invoke("report", "2", "--db", db, "--format", "md", "-o", md).exit_code == 0
    text = md.read_text()
    assert "| # | variant |" in text and "quick (not MLPerf-compliant)" in text
    out = tmp_path / "r.csv"
    assert invoke("report", "2", "--db", db, "--format", "csv", "-o", out).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["name"] == "onnxruntime/fp32/fixed" and float(rows[0]["offline.throughput_sps"]) > 0
    js = tmp_path / "r.json"
    assert invoke("report", "2", "--db", db, "--format", "json", "-o", js).exit_code == 0
    assert json.loads(js.read_text())["run_id"] == 2
    bad = invoke("report", "9", "--db", db)
    assert bad.exit_code == 2 and "run 9 is not in" in bad.output


def test_fail_on_rules():
    assert parse_fail_on("p99:+5%,throughput:-5%") == {"p99": 0.05, "throughput": -0.05}
    with pytest.raises(ConfigError, match="cannot read --fail-on rule 'latency:5'"):
        parse_fail_on("latency:5")
    assert set(ALIASES) == {"p50", "p90", "p99", "throughput"}


def test_statistics_on_planted_samples():
    rng = np.random.default_rng(3)
    a = rng.lognormal(0.0, 0.3, 2000)
    same = latency_change(a, rng.lognormal(0.0, 0.3, 2000), 99)
    assert not same.significant
    slower = latency_change(a, a * 1.2, 50)
    assert slower.significant and slower.rel == pytest.approx(0.2) and slower.p_value < 1e-6
    batches = np.repeat(np.arange(1, 41) * 10.0, 8)  # 8 samples every 10 ms
    thr = throughput_change(batches, batches * 1.25)
    assert thr.a == pytest.approx(800.0) and thr.rel == pytest.approx(-0.2)
    from inferarena.report.compare import Row

    rows = [Row("single_stream", "v", "p50", slower, "worse")]
    assert regressions(rows, {"p50": 0.05}) == rows and regressions(rows, {"p50": 0.5}) == []


def test_pareto_front():
    points = [(10.0, 1.0), (5.0, 0.99), (12.0, 0.98), (5.0, 0.95)]
    # lower x (latency) and higher y (fidelity) are better
    assert pareto_front(points, (False, True)) == [(5.0, 0.99), (10.0, 1.0)]


def test_html_escapes_user_strings(tmp_path):
    from inferarena.report.html import render

    evil = "<script>alert(1)</script>"
    run = {"run_id": 1, "model": evil, "quick": True, "created_at": "now", "status": "complete",
           "environment": {"cpu_model": evil, "packages": {}}, "workload": {"samples": 1, "source": evil},
           "notes": [evil], "config": {"scenarios": []},
           "variants": [{"name": evil, "runtime": "rt", "precision": "fp32", "shape": "fixed", "status": "failed",
                         "error": evil, "scenarios": {}, "knobs": {}}]}
    from inferarena.results import RunRecord

    page = render(RunRecord.from_dict(run), {})
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (.ci/run installs it; in CI this test never skips)")
def test_report_renders_in_headless_chromium(two_runs, tmp_path):
    page = two_runs.parent / "inferarena-run-2.html"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--log-level=0", "--virtual-time-budget=10000", "--window-size=1400,2400"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, env=env)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # the page logs nothing: no errors, no warnings
    plots = page.read_text().count('class="plot"')
    assert plots >= 4
    assert dom.stdout.count('class="main-svg"') >= plots  # every plot was drawn by plotly.js, offline
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120,
                   env=env, check=True)
    assert shot.stat().st_size > 10_000


def test_rounds_widen_the_interval_by_how_much_processes_differ():
    rng = np.random.default_rng(0)

    def tight(center):
        return rng.normal(center, 0.2, 300)

    # Run A had one slow process (29 ms) and one fast (20 ms); run B two slow ones: the same code.
    a, b = [tight(20.0), tight(29.0)], [tight(29.0), tight(29.5)]
    assert latency_change(np.concatenate(a), np.concatenate(b), 50).significant  # samples alone: "worse"
    assert not latency_change(a, b, 50).significant  # rounds: no evidence beyond process noise
    # With rounds that agree, a real 2x slowdown shows through; with rounds 45% apart, two of them
    # cannot pin it down (a t-interval on 2 + 2 rounds), and the verdict waits for more rounds.
    steady = [tight(20.0), tight(21.0)]
    assert latency_change(steady, [x * 2 for x in steady], 50).significant
    assert not latency_change(a, [x * 2 for x in a], 50).significant
    offline_a = [np.repeat(np.arange(1, 21) * 10.0, 8), np.repeat(np.arange(1, 21) * 14.0, 8)]
    assert not throughput_change(offline_a, [offline_a[1], offline_a[1]]).significant


def test_merging_rounds():
    from inferarena.results import ScenarioResult, VariantResult

    def result(p90, rss, samples):
        return VariantResult(name="v", runtime="onnxruntime", precision="fp32", shape="fixed", load_s=1.0,
                             memory={"peak_rss_mb": rss}, fidelity={"cos_min": 1.0}, scenarios={"single_stream": ScenarioResult(
                                 "single_stream", True, None, "quick",
                                 {"latency_ms_p50": p90 / 2, "latency_ms_p90": p90, "peak_rss_mb": rss,
                                  "energy_source": "estimate", "cpu_util_pct_per_core": [90.0, 50.0]},
                                 {"errors": ["early stopping not met"]}, np.asarray(samples, float))})

    merged = VariantResult.merge([result(10.0, 500.0, [9, 10, 11]), result(12.0, 520.0, [11, 12])])
    s = merged.scenarios["single_stream"]
    assert merged.rounds == 2 and merged.memory["peak_rss_mb"] == 520.0
    assert s.metrics["latency_ms_p90"] == 11.0 and s.metrics["peak_rss_mb"] == 520.0  # the catalogue: peaks merge by max
    assert s.metrics["latency_ms_p50_by_round"] == [5.0, 6.0] and s.metrics["round_spread_pct"] == 18.18
    assert s.metrics["energy_source"] == "estimate" and s.round_sizes == [3, 2] and len(s.latencies_ms) == 5
    assert s.loadgen["errors"] == ["early stopping not met"]  # text lists are kept, not averaged
    assert s.metrics["cpu_util_pct_per_core"] == [90.0, 50.0]
