"""`--executor` and `--ray-address` given wrong: one line naming the fix, exit code 2, nothing started."""

from __future__ import annotations

import pytest
from conftest import make_mlp_onnx, quick_config
from services import free_port
from typer.testing import CliRunner

from inferarena.cli import app


@pytest.mark.parametrize("extra, message", [
    (["--executor", "slurm"], "unknown executor 'slurm' · fix: use --executor spawn or --executor ray"),
    (["--ray-address", "127.0.0.1:6379"], "--ray-address is given without --executor ray · fix: add --executor ray"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:{port}"], "cannot reach the Ray cluster at 127.0.0.1:"),
])
def test_a_wrong_executor_is_one_line_with_the_fix(tmp_path, extra, message):
    pytest.importorskip("ray")
    model, config = make_mlp_onnx(tmp_path / "mlp.onnx"), quick_config(tmp_path)
    extra = [e.format(port=free_port()) for e in extra]
    result = CliRunner().invoke(app, ["run", "--model", str(model), "--config", str(config), "--db",
                                      str(tmp_path / "r.db"), "--no-report", *extra], catch_exceptions=False)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
