import os
import signal
import time

from inferarena.worker import run_isolated


def _square(x):
    return x * x


def _raise():
    raise ValueError("bad shape (1, 2)")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _hang():
    time.sleep(60)


def _noisy():
    print("framework chatter")
    os.abort()


def _exit():
    os._exit(3)


def test_ok_and_error():
    assert run_isolated(_square, (7,), 60).value == 49
    failed = run_isolated(_raise, (), 60)
    assert not failed.ok and failed.error == "ValueError: bad shape (1, 2)" and "Traceback" in failed.detail
    assert (failed.signal, failed.exit_code, failed.timed_out) == (None, None, False)  # the job raised: no death


def test_crash_and_timeout_become_failures(tmp_path):
    killed = run_isolated(_die, (), 60)
    assert not killed.ok and "SIGKILL" in killed.error and "out of memory" in killed.error
    hung = run_isolated(_hang, (), 2)
    assert not hung.ok and hung.error == "timed out after 2 s"
    log = tmp_path / "w.log"
    aborted = run_isolated(_noisy, (), 60, log)
    assert "SIGABRT" in aborted.error and "framework chatter" in aborted.detail
    # How each ended, as data beside the text: the signal, the exit code, or the timeout.
    assert (killed.signal, killed.exit_code, killed.timed_out) == ("SIGKILL", None, False)
    assert (hung.signal, hung.exit_code, hung.timed_out) == (None, None, True)
    exited = run_isolated(_exit, (), 60)
    assert exited.error == "worker exited with code 3 before reporting"
    assert (exited.signal, exited.exit_code, exited.timed_out) == (None, 3, False)


def test_a_job_ends_when_its_parent_is_killed():
    """`kill` of the parent (here SIGKILL, which it cannot handle) takes its job with it: no orphan left
    decoding on the cores."""
    import subprocess
    import sys

    import psutil

    parent = subprocess.Popen([sys.executable, "-c", "import time\nfrom inferarena.worker import run_isolated\n"
                               "run_isolated(time.sleep, (120,), 300)"])
    try:
        deadline = time.monotonic() + 60
        children = []
        while time.monotonic() < deadline and not children:
            children = [c for c in psutil.Process(parent.pid).children() if "python" in c.name().lower()]
            time.sleep(0.2)
        assert children, "the job never started"
        time.sleep(2)  # past the job's start-up, into time.sleep
        parent.kill()
        parent.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"orphaned job(s) still running: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
