"""The guide's config example must stay a valid run config, and the README stays a two-minute read."""

import re
from pathlib import Path

import yaml

from inferarena import runtimes
from inferarena.config import RunConfig


def test_readme_yaml_example_is_valid():
    guide = (Path(__file__).parents[1] / "docs" / "guide.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", guide, re.S).group(1)
    config = RunConfig.parse(yaml.safe_load(block), source="docs/guide.md")
    assert config.runtimes[0].knobs["graph_optimization_level"] == "extended"
    for spec in config.runtimes:  # knobs are the runtimes' to validate
        runtimes.get(spec.name).validate_knobs(spec.knobs)


def test_readme_is_short_and_links_resolve():
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    assert len(readme.split()) < 900  # about two minutes of reading
    assert "make demo" in readme and "make test" in readme
    for link in re.findall(r"\]\(((?:docs|bench)/[^)#]+)", readme):
        assert (root / link).exists(), link
