"""Fault injection: does inferarena lose results or die with a traceback when things go wrong?

Runs the real CLI in subprocesses on a tiny ONNX model and prints one table: case, what was
injected, what the tool did, and whether anything was lost. The last line is
`N cases: T tracebacks, L results lost`.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/faults.py              # every case
    HF_HUB_OFFLINE=1 .venv/bin/python bench/faults.py server_killed  # one (storage cases need misbehaving_runtimes)

Covered so far (issue 18, part 1): the misbehaving runtimes of bench/fault_plugins.py, kill -9 of
a sweep then --resume (checked row by row), a truncated DB, a DB locked by another writer, and a
full disk (RLIMIT_FSIZE), a DB from a future schema, the same kill -9 for `search`, and a server
SIGKILLed in the middle of `serve-bench`. The fuzzing (hypothesis) lives in tests/test_fuzz.py.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import make_mlp_onnx  # noqa: E402

PLUGINS = ";".join(f"runtimes.{name}=fault_plugins:{cls}" for name, cls in (
    ("fault_segfault", "Segfault"), ("fault_hang", "Hang"), ("fault_oom", "OutOfMemory"), ("fault_nan", "NaN"),
    ("fault_shape", "WrongShape"), ("fault_load", "RaiseInLoad")))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "INFERARENA_PLUGINS": PLUGINS, "COLUMNS": "200",
       "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])}
CLI = [sys.executable, "-m", "inferarena"]
rows: list[tuple[str, str, str, int]] = []  # (case, injected, what the tool did, results lost)
tracebacks = 0


def cli(*args, preexec=None, timeout=600) -> subprocess.CompletedProcess:
    global tracebacks
    done = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout,
                          preexec_fn=preexec)
    tracebacks += "Traceback" in done.stdout + done.stderr
    return done


def config(folder: Path, runtimes: list[str], **extra) -> Path:
    data = {"quick": True, "scenarios": ["single_stream", "offline"], "pipelines": [], "rounds": {"count": 1},
            "workload": {"num_samples": 64, "eval_samples": 16, "batch_size": 8},
            "loadgen": {"quick_duration_ms": 300}, "worker_timeout_s": 30,
            "runtimes": [{"name": r} for r in runtimes], **extra}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def variants(db: Path, run_id: int = 1) -> dict[str, tuple]:
    with sqlite3.connect(db) as con:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT name, status, error, finished_at FROM variants WHERE run_id = ?", (run_id,))}


def one_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:90] if text else "-"


def misbehaving_runtimes(tmp: Path, model: Path) -> None:
    faults = {"fault_segfault": "SIGSEGV in predict", "fault_hang": "predict never returns (timeout 30 s)",
              "fault_oom": "RLIMIT_AS +256 MB, then 4 GB allocated", "fault_nan": "every output NaN",
              "fault_shape": "outputs cut to [B, 1]", "fault_load": "RuntimeError raised in load"}
    db = tmp / "plugins.db"
    done = cli("run", "--model", model, "--config", config(tmp, ["onnxruntime", *faults]), "--db", db,
               "--cache-dir", tmp / "cache", "--no-report")
    found = variants(db) if db.is_file() else {}
    good = [n for n in found if n.startswith("onnxruntime/") and found[n][0] == "ok"]
    for runtime, injected in faults.items():
        mine = {n: v for n, v in found.items() if n.startswith(runtime + "/")}
        failed = [v for v in mine.values() if v[0] == "failed" and v[1] and "\n" not in v[1]]
        did = (f"recorded failed: {one_line(next(iter(mine.values()))[1])}" if failed and len(failed) == len(mine)
               else f"NOT recorded as a one-line failure ({mine or 'no row'})")
        rows.append((f"runtime {runtime}", injected, did + f" · exit {done.returncode}", 0 if good else 1))


def kill_and_resume(tmp: Path, model: Path, command: str = "run") -> None:
    db = tmp / f"resume-{command}.db"
    if command == "run":
        cfg = config(tmp, ["onnxruntime", "openvino"])
        args = ["run", "--model", model, "--config", cfg, "--db", db, "--cache-dir", tmp / "cache", "--no-report"]
    else:  # a grid over two runtimes' knobs, each trial a variant row
        args = ["search", "--model", model, "--quick", "--strategy", "grid", "--runtimes", "onnxruntime,openvino",
                "--pipelines", "none", "--db", db, "--cache-dir", tmp / "cache", "--no-report", "--trials", "6"]
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if db.is_file() and len(variants(db)) >= 1:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = variants(db)
    done = cli(*args, "--resume")
    after = variants(db)
    with sqlite3.connect(db) as con:
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        status = con.execute("SELECT status FROM runs WHERE run_id = 1").fetchone()[0]
        duplicates = con.execute("SELECT COUNT(*) - COUNT(DISTINCT variant || '|' || scenario) FROM measurements "
                                 "WHERE run_id = 1").fetchone()[0]
    lost = sum(1 for name, row in before.items() if after.get(name) != row)  # finished rows must be untouched
    complete = status == "complete" and all(r[0] == "ok" for r in after.values())
    kept = sum(1 for name, row in before.items() if after.get(name) == row)
    rows.append((f"kill -9 mid-{command}, then --resume", f"SIGKILL with {len(before)} of {len(after)} variants stored",
                 f"resumed run 1 to {status}: {kept} kept as stored, {len(after) - len(before)} measured, "
                 f"{runs} run(s), {duplicates} duplicate measurements, exit {done.returncode}",
                 lost + (0 if complete else 1) + duplicates + (runs - 1)))


def kill_and_resume_search(tmp: Path, model: Path) -> None:
    kill_and_resume(tmp, model, "search")


def storage(tmp: Path, model: Path) -> None:
    good = tmp / "plugins.db"
    # A truncated DB: half of the file.
    cut = tmp / "truncated.db"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    done = cli("results", "--db", cut)
    rows.append(("truncated DB", f"{len(data) // 2} of {len(data)} bytes", f"exit {done.returncode}: "
                 f"{one_line(done.stderr or done.stdout)}", 0 if variants(good) else 1))
    # Locked by another writer for the whole command.
    locked = tmp / "locked.db"
    locked.write_bytes(data)
    before = variants(locked)
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    done = cli("run", "--model", model, "--config", config(tmp, ["onnxruntime"]), "--db", locked,
               "--cache-dir", tmp / "cache", "--no-report", timeout=300)
    holder.execute("ROLLBACK")
    holder.close()
    rows.append(("DB locked by another writer", "BEGIN EXCLUSIVE held by a second connection",
                 f"exit {done.returncode}: {one_line(done.stderr or done.stdout)}", int(variants(locked) != before)))
    # Disk full while writing: no file may grow past 64 KB.
    full = tmp / "full.db"
    full.write_bytes(data)
    before = variants(full)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) + (64 << 10), len(data) + (64 << 10)))

    done = cli("run", "--model", model, "--config", config(tmp, ["onnxruntime"]), "--db", full,
               "--cache-dir", tmp / "cache", "--no-report", preexec=limit, timeout=300)
    rows.append(("disk full while writing", "RLIMIT_FSIZE: the DB may grow 64 KB",
                 f"exit {done.returncode}: {one_line(done.stderr or done.stdout)}", int(variants(full) != before)))


def future_schema(tmp: Path, model: Path) -> None:
    """A DB written by a newer inferarena: refused with a clear error, and left as it was."""
    db = tmp / "future.db"
    db.write_bytes((tmp / "plugins.db").read_bytes())
    with sqlite3.connect(db) as con:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        con.execute(f"PRAGMA user_version = {version + 1}")
    before = db.read_bytes()
    done = cli("results", "--db", db)
    rows.append(("DB from a future schema", f"user_version {version} → {version + 1}",
                 f"exit {done.returncode}: {one_line(done.stderr or done.stdout)}", int(db.read_bytes() != before)))


SERVER_MARKERS = {"mlserver": "mlserver start", "triton": "tritonserver", "torchserve": "org.pytorch.serve.ModelServer"}


def _processes() -> dict[int, str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in out.splitlines() if len(line.split(None, 1)) == 2}


def server_killed(tmp: Path, model: Path) -> None:
    """SIGKILL one server mid-serve-bench: its entry failed, the other complete, no process left behind."""
    victim, other = "mlserver", "triton"
    out = tmp / "serve.json"
    args = ["serve-bench", "--quick", "--model", model, "--servers", f"{victim},{other}", "--max-batch", "8",
            "--max-delay-ms", "2", "--slo", "p99_ms=200", "--json", out, "--db", tmp / "serve.db",
            "--cache-dir", tmp / "cache"]
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=ENV)
    killed = None
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline and killed is None:
        for pid, cmd in _processes().items():
            if SERVER_MARKERS[victim] not in cmd:
                continue
            # Its settings name its port: once it answers ready, LoadGen's probes start; kill it during them.
            settings = Path(cmd.split()[-1]) / "settings.json"
            try:
                port = json.loads(settings.read_text())["http_port"]
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).close()
            except (OSError, ValueError, KeyError):
                continue
            time.sleep(1.5)
            os.kill(pid, signal.SIGKILL)
            killed = pid
            break
        time.sleep(0.3)
    output, _ = process.communicate(timeout=900)
    global tracebacks
    tracebacks += "Traceback" in output
    time.sleep(2)
    left = [cmd for cmd in _processes().values() if any(m in cmd for m in SERVER_MARKERS.values())]
    doc = json.loads(out.read_text()) if out.is_file() else {"servers": []}
    by = {e["server"]: e for e in doc["servers"]}
    failed = by.get(victim, {}).get("status") == "failed" and "\n" not in (by[victim].get("error") or "\n")
    complete = by.get(other, {}).get("status") == "ok"
    did = (f"{victim} recorded {by.get(victim, {}).get('status', 'nothing')}: {one_line(by.get(victim, {}).get('error'))}; {other} "
           f"{by.get(other, {}).get('status', 'missing')}; {len(left)} server processes left; exit {process.returncode}")
    rows.append(("server killed mid-serve-bench", f"SIGKILL of {victim} (pid {killed})" if killed else "no kill: "
                 f"{victim} never started", did, 0 if (killed and failed and complete and not left) else 1))


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="inferarena-faults-") as name:
        tmp = Path(name)
        model = make_mlp_onnx(tmp / "mlp.onnx")
        cases = (misbehaving_runtimes, kill_and_resume, kill_and_resume_search, storage, future_schema, server_killed)
        chosen = set(sys.argv[1:])  # e.g. `bench/faults.py server_killed`; the storage cases reuse plugins.db
        for case in cases:
            if chosen and case.__name__ not in chosen:
                continue
            try:
                case(tmp, model)
            except Exception as exc:  # the suite itself failed: say so as a row, and count it as a traceback
                global tracebacks
                tracebacks += 1
                rows.append((case.__name__, "-", f"the suite failed: {type(exc).__name__}: {exc}", 0))
    widths = [max(len(str(r[i])) for r in rows + [("case", "injected", "what the tool did", "lost")]) for i in range(4)]
    for row in [("case", "injected", "what the tool did", "lost"), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    lost = sum(r[3] for r in rows)
    print(f"({time.monotonic() - started:.0f} s)")
    print(f"{len(rows)} cases: {tracebacks} tracebacks, {lost} results lost")
    return 0 if tracebacks == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
