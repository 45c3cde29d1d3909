import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "openvino", "tensorflow", "ray", "transformers", "onnx")


def test_importing_inferarena_loads_no_framework():
    # Every core module and every plugin module: plugins import their framework inside methods only.
    code = (
        "import sys, importlib, inferarena, inferarena.cli, inferarena.arena\n"
        "from inferarena import registry\n"
        "for axis in (registry.RUNTIMES, registry.MODEL_SOURCES, registry.PASSES, registry.SCENARIOS, registry.EVALUATORS,\n"
        "             registry.DEPLOY_TARGETS):\n"
        "    for name in axis: registry.load(axis, name)\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
