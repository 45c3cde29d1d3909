"""A native crash fails one test, not the suite: a test marked `native` runs in a pytest process of its own.

Tests that drive a native library in-process (llama.cpp, ONNX Runtime GenAI, OpenVINO GenAI, TensorFlow)
can die of a signal that no `try` catches, and a crash in the suite's own process would end every test
after it. So the parent runs each marked test as `python -m pytest NODEID` in a child process, replays the
child's reports (pass, skip, failure with its traceback) as if the test had run here, and reports a child
that dies as a failure naming its signal: "crashed with SIGSEGV (signal 11) in its own process".

pytest-forked does this with fork(), which is unsafe once torch or OpenMP threads exist in the parent;
a fresh interpreter costs a second or two per test and shares nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _pytest.reports import TestReport

CHILD = "INFERARENA_ISOLATED_REPORTS"  # set in the child: where it appends its serialized reports
TIMEOUT_S = 1800.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "native: drives a native runtime in-process; runs in a pytest process of "
                                       "its own, so a crash fails this test alone (tests/isolation.py)")
    path = os.environ.get(CHILD)
    if path:
        config.pluginmanager.register(_Recorder(config, Path(path)), "isolation-recorder")


class _Recorder:
    """In the child: every report, serialized as pytest-xdist does, one JSON line each."""

    def __init__(self, config: pytest.Config, path: Path):
        self.config, self.path = config, path

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        with self.path.open("a") as f:
            f.write(json.dumps(data) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if os.environ.get(CHILD) or item.get_closest_marker("native") is None:
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _run_alone(item):
        item.ihook.pytest_runtest_logreport(report=report)
    # The earlier tests' module and session fixtures set up here stay up until no later test shares them, as
    # pytest's own teardown phase would leave them (without this, the next test's setup finds them stale).
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _run_alone(item: pytest.Item) -> list[TestReport]:
    config = item.config
    with tempfile.TemporaryDirectory(prefix="inferarena-isolated-") as folder:
        path = Path(folder) / "reports.jsonl"
        command = [sys.executable, "-m", "pytest", item.nodeid, "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                   "--rootdir", str(config.rootpath)]
        if config.inipath:
            command += ["-c", str(config.inipath)]
        start = time.monotonic()
        try:
            done = subprocess.run(command, cwd=config.rootpath, env={**os.environ, CHILD: str(path)},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
            code, output = done.returncode, done.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            code, output = None, (exc.stdout or b"").decode(errors="replace")
        elapsed = time.monotonic() - start
        lines = path.read_text().splitlines() if path.is_file() else []
    reports = [config.hook.pytest_report_from_serializable(config=config, data=json.loads(line)) for line in lines]
    for report in reports:  # a skip's (path, line, reason) comes back from JSON as a list; pytest wants a tuple
        if isinstance(report.longrepr, list):
            report.longrepr = tuple(report.longrepr)
    if code is not None and code >= 0 and any(r.when == "teardown" for r in reports):
        return reports
    if code is None:
        why = f"did not finish in {TIMEOUT_S:.0f} s in its own process (killed)"
    elif code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        why = f"crashed with {name} (signal {-code}) in its own process"
    else:
        why = f"its own process exited with code {code} before the test finished"
    lines = output.splitlines()
    fatal = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
    # faulthandler's report: the error, then the crashing thread's innermost frames (the test's own first)
    shown = lines[fatal:fatal + 12] if fatal is not None else lines[-30:]
    crashed = TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed",
                         f"{why}; the tests after it go on.\nWhat that process printed:\n" + "\n".join(shown),
                         "call", duration=elapsed)
    return [r for r in reports if r.when == "setup"] + [crashed]
