"""kuma-cp.defaults.yaml is the config schema's defaults: regenerated, it is unchanged, and
kuma-cp loads it to exactly the built-in defaults."""

from __future__ import annotations

from pathlib import Path

from kuma.config import ENV_VARS, KumaCpConfig, load_config
from kuma.config_defaults import render

DEFAULTS_FILE = Path(__file__).parents[2] / "kuma-cp.defaults.yaml"


def test_the_shipped_file_is_what_the_schema_generates():
    assert DEFAULTS_FILE.read_text() == render(), (
        "kuma-cp.defaults.yaml is stale: python -m kuma.config_defaults > kuma-cp.defaults.yaml"
    )


def test_loading_it_changes_nothing_and_it_names_every_env_var():
    assert load_config(str(DEFAULTS_FILE), env={}) == KumaCpConfig()
    text = DEFAULTS_FILE.read_text()
    assert [env for env in ENV_VARS if f"# {env}\n" not in text] == []
