"""The README's config example must stay a valid run config."""

import re
from pathlib import Path

import yaml

from inferarena import runtimes
from inferarena.config import RunConfig


def test_readme_yaml_example_is_valid():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    config = RunConfig.parse(yaml.safe_load(block), source="README")
    assert config.runtimes[0].knobs["graph_optimization_level"] == "extended"
    for spec in config.runtimes:  # knobs are the runtimes' to validate
        runtimes.get(spec.name).validate_knobs(spec.knobs)
