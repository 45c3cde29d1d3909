"""Fuzzing with hypothesis: bad configs, CLI values, model files, inputs and corpora each end in one
clear line (`error: … · fix: …`) and exit code 2, never a traceback (issue 18, part 1.4).

Every case goes through the real entry point, `inferarena.cli.main`, with `--dry-run`, which reads the
model, builds and checks the inputs and plans the variants, then stops before any worker starts. A
mutated file may still be valid (a flipped bit in a weight): then the dry run succeeds (exit 0), which
is right, since no format carries a checksum of its weights.
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from conftest import make_mlp_onnx  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inferarena.cli import main  # noqa: E402

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def cli(capsys, *args) -> tuple[int, str]:
    """Run `inferarena ARGS` in this process; the exit code and everything printed."""
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = done.value.code if isinstance(done.value.code, int) else (0 if done.value.code is None else 1)
    return code, out.out + out.err


def assert_clear(code: int, output: str, allow_ok: bool = True) -> None:
    """Exit 0 (the input was fine after all) or 2 with exactly one error line; never a traceback."""
    assert "Traceback" not in output, output
    assert code in ((0, 2) if allow_ok else (2,)), (code, output[-2000:])
    if code == 2:
        lines = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, output[-2000:]
        assert "fix:" in lines[0] or "--help" in lines[0], lines[0]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    return make_mlp_onnx(tmp_path_factory.mktemp("mlp") / "mlp.onnx")


# --- YAML configs and CLI values -------------------------------------------------------------------

FIELDS = ["model", "workload", "runtimes", "pipelines", "scenarios", "quick", "threads", "loadgen", "rounds",
          "profile", "constraints", "search", "fidelity", "energy", "cost", "worker_timeout_s", "version",
          "num_samples", "batch_size", "shapes", "name", "passes", "inputs", "texts", "count", "max_p99_ms"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["fixed", "offline", "onnxruntime", "int8-dynamic", "-1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)),
                      max_leaves=12)
configs = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)


@FUZZ
@given(data=configs)
def test_fuzzed_yaml_configs(tmp_path, capsys, mlp, data):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_clear(*cli(capsys, "run", "--model", mlp, "--config", path, "--dry-run"))


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.sampled_from(["{", "- a\n- b", "a: [1, 2", "!!python/object:os.system ls", "\t:\n", "---\n..."])))
def test_fuzzed_yaml_text(tmp_path, capsys, mlp, text):
    path = tmp_path / "run.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert_clear(*cli(capsys, "run", "--model", mlp, "--config", path, "--dry-run"))


OPTIONS = ["--threads", "--scenarios", "--runtimes", "--pipelines", "--shapes", "--profile", "--max-p99-ms",
           "--min-cos", "--min-throughput", "--max-memory-mb", "--ci-target-pct", "--sort", "--inputs"]
option_values = st.one_of(st.text(alphabet=string.printable, max_size=12), st.integers(-5, 10**9).map(str),
                          st.sampled_from(["0", "-1", "nan", "inf", "1e309", "", ",", "offline,,x", "none", "1.5"]))


@FUZZ
@given(option=st.sampled_from(OPTIONS), value=option_values)
def test_fuzzed_cli_values(capsys, mlp, option, value):
    assert_clear(*cli(capsys, "run", "--model", mlp, option, value, "--dry-run"))


@FUZZ
@given(command=st.sampled_from(["run", "search", "serve-bench", "show", "report", "compare", "recommend", "peak"]),
       junk=st.lists(st.text(alphabet=string.ascii_letters + "-=", min_size=1, max_size=10), min_size=1, max_size=3))
def test_fuzzed_arguments(capsys, command, junk):
    """Unknown options and stray arguments: click's usage error, as one line with the fix."""
    code, output = cli(capsys, command, "--no-such-option", *junk)
    assert_clear(code, output, allow_ok=False)


# --- model files, truncated or bit-flipped ---------------------------------------------------------

def mutate(data: bytes, cut: float | None, flips: list[int]) -> bytes:
    if cut is not None:
        return data[: int(len(data) * cut)]
    out = bytearray(data)
    for position in flips:
        out[position % len(out)] ^= 1 << (position % 8)
    return bytes(out)


mutations = st.one_of(st.tuples(st.floats(0, 0.99), st.just([])),
                      st.tuples(st.none(), st.lists(st.integers(0, 10**7), min_size=1, max_size=8)))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, mlp) -> dict[str, Path]:
    """One small valid file per format: ONNX, OpenVINO IR, GGUF; .tflite and SavedModel where TF is installed."""
    folder = tmp_path_factory.mktemp("formats")
    files = {"onnx": mlp}
    ov = pytest.importorskip("openvino")
    ov.save_model(ov.Core().read_model(str(mlp)), str(folder / "mlp.xml"), compress_to_fp16=False)
    files["xml"] = folder / "mlp.xml"
    files["bin"] = folder / "mlp.bin"
    try:
        files["gguf"] = _tiny_gguf(folder / "tiny.gguf")
    except ImportError:
        pass
    try:
        import tensorflow as tf
    except ImportError:
        return files

    class Tiny(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.matmul(x, self.w)}

    module = Tiny()
    tf.saved_model.save(module, str(folder / "saved"), signatures={"serving_default": module.__call__})
    files["saved_model.pb"] = folder / "saved" / "saved_model.pb"
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved"))
    (folder / "tiny.tflite").write_bytes(converter.convert())
    files["tflite"] = folder / "tiny.tflite"
    return files


def _tiny_gguf(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_embedding_length(8)
    writer.add_context_length(64)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.zeros((3, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@settings(FUZZ, max_examples=90)
@given(which=st.sampled_from(["onnx", "xml", "bin", "gguf", "tflite", "saved_model.pb"]), mutation=mutations)
def test_fuzzed_model_files(tmp_path, capsys, model_files, which, mutation):
    if which not in model_files:
        pytest.skip(f"no {which} writer installed")
    original = model_files[which]
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "m"  # tmp_path is shared by every example
    if which == "saved_model.pb":
        shutil.copytree(original.parent, folder)
        target, spec = folder / original.name, folder
    else:
        folder.mkdir()
        for sibling in original.parent.glob(original.stem + ".*"):  # an IR's .xml travels with its .bin
            (folder / sibling.name).write_bytes(sibling.read_bytes())
        target = folder / original.name
        spec = target.with_suffix(".xml") if which == "bin" else target
    target.write_bytes(mutate(original.read_bytes(), *mutation))
    code, output = cli(capsys, "run", "--model", spec, "--dry-run")
    OUTCOMES.append((which, "cut" if mutation[0] is not None else "flip", code, _first_error(output)))
    assert_clear(code, output)


OUTCOMES: list[tuple] = []  # (format, mutation, exit code, error line): summarised by conftest's report hook


def _first_error(output: str) -> str:
    return next((line[:110] for line in output.splitlines() if line.startswith("error:")), "-")


def outcome_lines() -> list[str]:
    """What the fuzzed model files ended as, one line per format, mutation and exit code (the first error)."""
    counts: dict = {}
    for which, kind, code, line in OUTCOMES:
        counts.setdefault((which, kind, code), line)
    return [f"{which:15} {kind:4} exit {code}: {line}" for (which, kind, code), line in sorted(counts.items())]


# --- .npz inputs ----------------------------------------------------------------------------------

arrays = st.one_of(
    st.just(np.zeros((0, 4), np.float32)),
    st.just(np.full((3, 4), np.nan, np.float32)),
    st.just(np.array([[np.inf, 0, 0, 0]], np.float64)),
    st.just(np.ones((2, 4), np.complex64)),
    st.just(np.array([["a", "b", "c", "d"]])),
    st.just(np.ones((2, 4), np.int64)),
    st.just(np.ones((2, 5), np.float32)),
    st.just(np.ones((4,), np.float32)),
    st.just(np.ones((2, 4, 1), np.float32)),
    st.just(np.full((2, 4), 1e300)),
    st.builds(lambda n, d: np.ones((n, d), np.float32), st.integers(0, 3), st.integers(0, 6)),
)


@FUZZ
@given(name=st.sampled_from(["x", "X", "input", "", "y"]), array=arrays, extra=st.booleans())
def test_fuzzed_npz_inputs(tmp_path, capsys, mlp, name, array, extra):
    path = tmp_path / "inputs.npz"
    given_arrays = {name or "arr_0": array, **({"other": np.ones((2, 2))} if extra else {})}
    np.savez(path, **given_arrays)
    assert_clear(*cli(capsys, "run", "--model", mlp, "--inputs", path, "--dry-run", "--runtimes", "onnxruntime"))


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzzed_npz_bytes(tmp_path, capsys, mlp, data):
    path = tmp_path / "inputs.npz"
    path.write_bytes(data)
    code, output = cli(capsys, "run", "--model", mlp, "--inputs", path, "--dry-run", "--runtimes", "onnxruntime")
    assert_clear(code, output, allow_ok=False)


# --- text corpora ---------------------------------------------------------------------------------

corpora = st.one_of(
    st.just(b""), st.just(b"\n\n  \n"), st.binary(min_size=1, max_size=200),
    st.just(b"caf\xe9 au lait\n"), st.just(b"\x00\x01\x02binary\n"), st.just(b"x" * (10 << 20)),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
jsonl = st.one_of(
    st.just(b'{"content": "no text field"}\n'), st.just(b'[1, 2]\n'), st.just(b'{"text": 3}\n'),
    st.just(b'{"text": ""}\n'), st.just(b'{"text": "ok"}\n{"text"\n'), st.just(b"null\n"),
    st.lists(st.dictionaries(st.sampled_from(["text", "label", "id"]), st.one_of(st.text(max_size=10), st.integers()),
                             max_size=2), min_size=1, max_size=4).map(lambda rows: "\n".join(map(json.dumps, rows)).encode()),
)


@FUZZ
@given(suffix=st.sampled_from([".txt", ".jsonl"]), data=st.one_of(corpora, jsonl))
def test_fuzzed_corpora(tmp_path, capsys, tiny_bert, suffix, data):
    path = tmp_path / f"corpus{suffix}"
    path.write_bytes(data)
    assert_clear(*cli(capsys, "run", "--model", tiny_bert, "--inputs", path, "--dry-run", "--runtimes", "onnxruntime",
                      "--pipelines", "none"))


@pytest.mark.parametrize("data,message", [
    (b"", "is empty"), (b"\x00\x01binary", "is binary"), (b"caf\xe9\n", "is not UTF-8"),
    (b"x" * (10 << 20), "characters, over the"),
])
def test_bad_corpora_get_a_named_error(tmp_path, capsys, tiny_bert, data, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    code, output = cli(capsys, "run", "--model", tiny_bert, "--inputs", path, "--dry-run")
    assert code == 2 and message in output, output


def test_jsonl_without_text_names_the_line(tmp_path, capsys, tiny_bert):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    code, output = cli(capsys, "run", "--model", tiny_bert, "--inputs", path, "--dry-run")
    assert code == 2 and "corpus.jsonl:2" in output and "'text'" in output, output


def test_npz_with_nan_names_the_sample(tmp_path, capsys, mlp):
    x = np.ones((5, 4), np.float32)
    x[3, 1] = np.nan
    np.savez(tmp_path / "in.npz", x=x)
    code, output = cli(capsys, "run", "--model", mlp, "--inputs", tmp_path / "in.npz", "--dry-run")
    assert code == 2 and "NaN" in output and "sample 3" in output, output


def test_dry_run_prints_the_plan_and_stores_nothing(tmp_path, capsys, mlp, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = cli(capsys, "run", "--model", mlp, "--dry-run", "--runtimes", "onnxruntime")
    assert code == 0, output
    assert "onnxruntime/fp32" in output and "Nothing was measured or stored" in output
    assert not (tmp_path / "inferarena.db").exists()


def test_an_openvino_ir_is_a_model(tmp_path, capsys, model_files):
    """A user's .xml + .bin: read by OpenVINO, planned on it; without its .bin, a named error."""
    code, output = cli(capsys, "run", "--model", model_files["xml"], "--dry-run")
    assert code == 0 and "openvino/fp32" in output and "onnxruntime/" not in output, output
    lone = tmp_path / "lone.xml"
    lone.write_bytes(model_files["xml"].read_bytes())
    code, output = cli(capsys, "run", "--model", lone, "--dry-run")
    assert code == 2 and "no weights file lone.bin" in output, output
