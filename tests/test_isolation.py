"""A native runtime crashed on purpose inside a suite fails that test alone; the tests after it still run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

PLANTED = '''
import importlib.util

import pytest


@pytest.fixture(scope="module")
def shared():
    return {"up": True}


def test_before(shared):
    assert shared["up"]


@pytest.mark.native
def test_crashes_llama_cpp_on_purpose():
    if importlib.util.find_spec("llama_cpp") is not None:
        import llama_cpp

        llama_cpp.llama_n_ctx(None)  # a NULL context: llama.cpp reads through it and dies of SIGSEGV
    import ctypes

    ctypes.string_at(0)  # no llama.cpp here: the same crash from the C library


@pytest.mark.native
def test_native_and_fine():
    assert sum(range(4)) == 6


@pytest.mark.native
def test_native_and_skipped():
    pytest.skip("skips travel back from the test's own process")


def test_after(shared):
    assert shared["up"]  # a module fixture set up here before the native tests is still up, not stale
'''

OTHER_MODULE = '''
def test_in_the_next_module():
    assert "a fresh module after a native test sets up cleanly"
'''


def test_a_native_crash_fails_one_test_and_the_suite_goes_on(tmp_path):
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
                                          "pytest_plugins = ['isolation']\n")
    (tmp_path / "test_planted.py").write_text(PLANTED + "\n\n@pytest.mark.native\ndef test_native_last():\n    pass\n")
    (tmp_path / "test_zz_next.py").write_text(OTHER_MODULE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # one failure, and pytest itself finished
    assert "1 failed, 5 passed, 1 skipped" in out, out
    assert "test_crashes_llama_cpp_on_purpose - crashed with SIGSEGV (signal 11) in its own process" in out, out
    assert "skips travel back" in out, out
