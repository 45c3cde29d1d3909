"""`--launcher` and `--ray-address` given wrong: one line naming the fix, exit code 2, nothing started."""

from __future__ import annotations

import pytest
from conftest import make_mlp_onnx, quick_config
from services import free_port
from typer.testing import CliRunner

from inferarena.cli import app


@pytest.mark.parametrize("extra, message", [
    (["--launcher", "slurm"], "unknown launcher 'slurm' · fix: use --launcher spawn or --launcher ray"),
    (["--ray-address", "127.0.0.1:6379"], "--ray-address is given without --launcher ray · fix: add --launcher ray"),
    (["--launcher", "ray", "--ray-address", "127.0.0.1:{port}"], "cannot reach the Ray cluster at 127.0.0.1:"),
])
def test_a_wrong_launcher_is_one_line_with_the_fix(tmp_path, extra, message):
    pytest.importorskip("ray")
    model, config = make_mlp_onnx(tmp_path / "mlp.onnx"), quick_config(tmp_path)
    extra = [e.format(port=free_port()) for e in extra]
    result = CliRunner().invoke(app, ["run", "--model", str(model), "--config", str(config), "--db",
                                      str(tmp_path / "r.db"), "--no-report", *extra], catch_exceptions=False)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
