"""The security review's checks (docs/security.md): user strings escaped wherever they are shown, no
pickle or remote code from user files, servers on loopback only, API keys never written, TLS
verified, private run folders."""

import http.server
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import make_mlp_onnx, quick_config
from typer.testing import CliRunner

from inferarena.cli import app

SRC = Path(__file__).parents[1] / "src" / "inferarena"
# A page that runs either of these sets its title to PWN (spelled so that the payload's own text,
# shown escaped in the title, never contains it); the browser test reads the title back.
SCRIPT = "</script><script>document.title=String.fromCharCode(80,87,78)</script>"
IMG = "<img src=x onerror=\"document.title=String.fromCharCode(80,87,78)\">"
MARKUP = "[bold red]"
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--virtual-time-budget=5000"]


def invoke(*args, **kwargs):
    return CliRunner(**kwargs).invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A real run whose model file and inputs path carry every payload: the model's name lands in the
    console, the DB, the HTML report (title, header), Markdown and CSV; the inputs' path in the
    workload line of each."""
    import numpy as np

    tmp = tmp_path_factory.mktemp("hostile")
    # "/" cannot be in a file name, so the </script> payload spans folders.
    folder = tmp.joinpath(*SCRIPT.split("/")) / f"{IMG}{MARKUP}"
    folder.mkdir(parents=True)
    model = make_mlp_onnx(folder / f"{IMG}{MARKUP}.onnx")
    inputs = folder / f"{MARKUP}.npz"
    np.savez(inputs, x=np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32))
    db = tmp / "r.db"
    result = invoke("run", "--model", model, "--inputs", inputs, "--config", quick_config(tmp), "--runtimes",
                    "onnxruntime", "--db", db, "--cache-dir", tmp / "cache")
    assert result.exit_code == 0, result.output
    return tmp, db, model, result.output


def test_terminal_shows_user_strings_as_text(hostile_run):
    tmp, db, model, output = hostile_run
    flat = output.replace("\n", "")
    assert MARKUP in flat  # printed, not taken as a style
    shown = invoke("show", "1", "--db", db, "--wide")
    assert shown.exit_code == 0 and f"{IMG}{MARKUP}.onnx" in shown.output and SCRIPT in shown.output


def _title_in_chromium(page: Path, tmp_path: Path) -> str:
    dom = subprocess.run(["chromium", *CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert "<html" in dom.stdout, dom.stderr[-500:]
    return re.search(r"<title>(.*?)</title>", dom.stdout, re.S).group(1)


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (.ci/run installs it; in CI this test never skips)")
def test_html_report_runs_no_injected_script(hostile_run, tmp_path):
    tmp, db, model, _ = hostile_run
    page = tmp / "inferarena-run-1.html"
    html = page.read_text()
    assert SCRIPT not in html and IMG not in html and html.count("&lt;img src=x onerror=") >= 2
    title = _title_in_chromium(page, tmp_path)
    assert "PWN" not in title and title.startswith("inferarena run 1")
    # The plots' data sits in JSON inside <script> tags: a variant name with the payloads stays data.
    from inferarena.report import html as report_html
    from inferarena.store import SQLiteStore

    run = SQLiteStore(db).load_run(1)
    for v in run.variants:
        v.name = f"{SCRIPT}{IMG}{v.name}"
    page2 = tmp_path / "names.html"
    page2.write_text(report_html.render(run, SQLiteStore(db).load_samples(1)))
    assert SCRIPT not in page2.read_text()
    assert "PWN" not in _title_in_chromium(page2, tmp_path)


def test_markdown_and_csv_exports_neutralize(hostile_run, tmp_path):
    tmp, db, model, _ = hostile_run
    md, csv_path = tmp_path / "r.md", tmp_path / "r.csv"
    assert invoke("report", "1", "--db", db, "--format", "md", "-o", md).exit_code == 0
    text = md.read_text()
    assert "<img" not in text and "<script" not in text and "&lt;img" in text and "&lt;/script&gt;" in text
    from inferarena.report.markdown import _cell

    assert invoke("report", "1", "--db", db, "--format", "csv", "-o", csv_path).exit_code == 0
    assert "onnxruntime/fp32/fixed" in csv_path.read_text()
    for formula in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"):
        assert _cell(formula) == "'" + formula  # a spreadsheet shows it, never runs it
    assert _cell(-2.5) == -2.5 and _cell("openvino/int8") == "openvino/int8"


def _unsafe_calls(tree) -> list[str]:
    """Calls that would unpickle, evaluate or import code from a file, found in the syntax tree."""
    import ast

    def kw(call, name):
        found = [k.value for k in call.keywords if k.arg == name]
        return found[0].value if found and isinstance(found[0], ast.Constant) else (None if not found else "?")

    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        bad = ((isinstance(func, ast.Name) and name in ("eval", "exec"))
               or (owner == "pickle" and name in ("load", "loads"))
               or (owner == "yaml" and name in ("load", "unsafe_load", "full_load"))
               or kw(node, "allow_pickle") is True or kw(node, "weights_only") is False
               or kw(node, "trust_remote_code") not in (None, False) or kw(node, "safe_mode") is False
               or (owner == "torch" and name == "load" and kw(node, "weights_only") is not True)
               or (owner == "np" and name == "load" and kw(node, "allow_pickle") is not False)
               or (name == "from_pretrained" and kw(node, "use_safetensors") is not True
                   and kw(node, "gguf_file") is None))  # GGUF holds tensors, not code
        if bad:
            hits.append(f"line {node.lineno}: {ast.unparse(node)[:120]}")
    return hits


def test_no_pickle_eval_or_remote_code_in_the_source():
    """Loading a user's file never unpickles, evaluates or imports code from it: a scan of every call in
    the package (np.load says allow_pickle=False, torch.load weights_only=True, from_pretrained
    use_safetensors=True, keras safe_mode stays on, no eval/exec/pickle/yaml.load)."""
    import ast

    hits = {str(p.relative_to(SRC)): h for p in SRC.rglob("*.py") if (h := _unsafe_calls(ast.parse(p.read_text())))}
    assert hits == {}
    assert _unsafe_calls(ast.parse("np.load(f)\nAutoModel.from_pretrained(d, trust_remote_code=True)\neval(s)")) != []


def test_a_pickled_encoder_folder_is_refused(tmp_path, tiny_bert):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    result = invoke("run", "--model", folder, "--quick", "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "pytorch_model.bin, a pickle" in result.output
    assert "Traceback" not in result.output


def _serve(script: str, tmp_path: Path):
    from inferarena.serving.process import ServerProcess, free_port

    port = free_port()
    command = [sys.executable, "-c", script.format(port=port)]
    return ServerProcess("probe", command, tmp_path / "server.log", tmp_path).start(), port


HTTP = ("import http.server as h\n"
        "class H(h.BaseHTTPRequestHandler):\n"
        "    def do_GET(self): self.send_response(200); self.end_headers()\n"
        "h.HTTPServer(('{host}', {{port}}), H).serve_forever()\n")


def test_servers_we_start_must_listen_on_loopback_only(tmp_path):
    from inferarena.serving.process import ServerFailed

    server, port = _serve(HTTP.format(host="127.0.0.1"), tmp_path)
    try:
        server.wait_ready([f"http://127.0.0.1:{port}/"], timeout_s=30)
        assert server.listening() == [("127.0.0.1", port)]
    finally:
        server.stop()
    exposed, port = _serve(HTTP.format(host="0.0.0.0"), tmp_path)
    try:
        with pytest.raises(ServerFailed, match=f"listened on 0.0.0.0:{port}, reachable from other machines"):
            exposed.wait_ready([f"http://127.0.0.1:{port}/"], timeout_s=30)
        assert not exposed.alive()  # stopped at once
    finally:
        exposed.stop()


def test_started_servers_are_configured_for_loopback():
    """The addresses each server plugin writes: loopback everywhere, TorchServe's token auth off only there."""
    texts = {p.name: p.read_text() for p in (SRC / "serving").glob("*.py")}
    assert all("0.0.0.0" not in t for t in texts.values())
    torchserve = texts["torchserve.py"]
    assert "disable_token_authorization=true" in torchserve
    for key in ("inference_address=http://127.0.0.1", "management_address=http://127.0.0.1",
                "metrics_address=http://127.0.0.1", "grpc_inference_address=127.0.0.1",
                "grpc_management_address=127.0.0.1"):
        assert key in torchserve
    assert '"host": "127.0.0.1"' in texts["mlserver.py"]
    assert texts["triton_serve.py"].count('"127.0.0.1"') >= 3
    assert '"--host", "127.0.0.1"' in texts["openai.py"]


class _Recording(http.server.BaseHTTPRequestHandler):
    """KServe v2 `double` that records each request's Authorization header."""
    seen: list[str] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Recording.seen.append(self.headers.get("Authorization") or "")
        outputs = [{"name": "y", "datatype": "FP32", "shape": i["shape"], "data": [2 * x for x in i["data"]]}
                   for i in body["inputs"]]
        payload = json.dumps({"model_name": "double", "outputs": outputs}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_api_key_is_sent_and_never_written(tmp_path, monkeypatch):
    secret = "sk-test-4f1c9e0b7d2a"
    monkeypatch.setenv("INFERARENA_API_KEY", secret)
    model = make_mlp_onnx(tmp_path / "mlp.onnx")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = invoke("serve-bench", "--quick", "--model", model, "--target", f"http://127.0.0.1:{server.server_address[1]}",
                        "--target-model", "double", "--probe-ms", "300", "--json", tmp_path / "s.json",
                        "--db", tmp_path / "r.db", "--cache-dir", tmp_path / "cache")
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert _Recording.seen and set(_Recording.seen) == {f"Bearer {secret}"}
    assert invoke("report", "1", "--db", tmp_path / "r.db", "-o", tmp_path / "s.html").exit_code == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in Path(".inferarena").rglob("*") if p.is_file()]
    assert len(written) > 3
    leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
    assert leaks == [] and secret not in result.output
    # A key in the URL would be stored with the run: refused, and it says where the key goes.
    bad = invoke("serve-bench", "--model", model, "--target", f"http://user:{secret}@127.0.0.1:1", "--target-model",
                 "double", "--db", tmp_path / "r2.db")
    assert bad.exit_code == 2 and "INFERARENA_API_KEY" in bad.output and "Traceback" not in bad.output


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_is_verified(tmp_path, monkeypatch):
    from inferarena.serving.clients import RequestFailed, client

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import numpy as np

    url = f"https://127.0.0.1:{server.server_address[1]}"
    inputs = {"x": np.ones((1, 4), np.float32)}
    try:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(RequestFailed, match="not trusted.*SSL_CERT_FILE"):
            client("kserve-v2", url, "double").infer(inputs)  # self-signed: refused by default
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the user's own CA: trusted
        assert client("kserve-v2", url, "double").infer(inputs)["y"].tolist() == [[2.0] * 4]
    finally:
        server.shutdown()


def test_run_folders_are_private(hostile_run):
    tmp, db, model, _ = hostile_run
    for folder in (tmp / ".inferarena" / "run-1", tmp / ".inferarena" / "run-1" / "logs", tmp / "cache"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    from inferarena.fsutil import private_dir

    existing = tmp / "shared"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    made = private_dir(existing / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700 and stat.S_IMODE((existing / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # a folder the user made keeps its mode
