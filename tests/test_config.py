import pytest

from inferarena.config import RunConfig, RuntimeSpec
from inferarena.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig(runtimes=[RuntimeSpec(name="onnxruntime", knobs={"graph_optimization_level": "basic"})], quick=True)
    path = tmp_path / "cfg.yaml"
    path.write_text(cfg.to_yaml())
    assert RunConfig.from_yaml(path) == cfg
    assert RunConfig.from_yaml(path).config_hash() == cfg.config_hash()


def test_invalid_field_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("workload:\n  max_length: -3\n")
    with pytest.raises(ConfigError, match=r"field 'workload.max_length'"):
        RunConfig.from_yaml(path)


def test_unknown_field_and_runtime_are_named():
    with pytest.raises(ConfigError, match="field 'colour'"):
        RunConfig.parse({"colour": "red"})
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrtx'"):
        RunConfig.parse({"runtimes": [{"name": "tensorrtx"}]})


def test_broken_yaml_syntax(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("quick: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml(path)
