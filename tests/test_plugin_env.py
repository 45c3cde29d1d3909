"""INFERARENA_PLUGINS adds plugins from outside the package, in this process and in spawned jobs."""

import os
import subprocess
import sys


def _registry(spec: str) -> subprocess.CompletedProcess:
    code = "from inferarena import registry; print(registry.RUNTIMES.get('mine'), registry.PASSES.get('p'))"
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env={**os.environ, "INFERARENA_PLUGINS": spec})


def test_plugins_from_the_environment():
    done = _registry("runtimes.mine=my_pkg.rt:Mine; passes.p=my_pkg.passes:P")
    assert done.stdout.split() == ["my_pkg.rt:Mine", "my_pkg.passes:P"], done.stderr


def test_a_malformed_entry_is_ignored_with_a_one_line_warning():
    done = _registry("runtime.mine=x:Y;runtimes.mine=nocolon")
    assert done.returncode == 0 and done.stdout.split() == ["None", "None"]
    assert done.stderr.count("INFERARENA_PLUGINS: ignored") == 2 and "Traceback" not in done.stderr
