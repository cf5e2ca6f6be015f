"""kuma-cp configuration: defaults, an optional YAML file, then KUMA_* env vars (spec §2.2-§2.4).

The package's API is what this module exports. Inside it:
- `engine.py`   reads a settings tree of dataclasses from YAML and env vars, writes it as JSON;
- `schema.py`   kuma-cp's sections (`KumaCpConfig`) and the env vars they read (`ENV_VARS`);
- `checks.py`   the validation rules and their Kuma messages (`validate`);
- `autoconfig.py` the derived values (`autoconfigure`) and the `/catalog` document;
- `postgres.py` the store's Postgres settings as a libpq conninfo string.

Deliberate choices beyond the engine's:
- `defaults.mesh` is set by `KUMA_DEFAULTS_MESH` (Kuma's code only honoured `DEFAULTS_MESH`), and in
  the file it may be a YAML string (Kuma's form) or a plain mapping.
- `load_config` validates but does not autoconfigure: kuma-cp logs the config before `autoconfigure`
  and serves it after (spec §16.13).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kuma.config.autoconfig import autoconfigure, catalog
from kuma.config.checks import validate
from kuma.config.engine import (
    env_vars,
    format_go_duration,
    option,
    parse_go_bool,
    parse_go_duration,
    read_settings,
    section,
    to_json,
)
from kuma.config.postgres import postgres_conninfo
from kuma.config.schema import (
    ENV_VARS,
    BootstrapParamsConfig,
    DataplaneTokenApiConfig,
    KumaCpConfig,
    WorkerConfig,
)
from kuma.errors import ConfigError

__all__ = [
    "ENV_VARS",
    "BootstrapParamsConfig",
    "ConfigError",
    "DataplaneTokenApiConfig",
    "KumaCpConfig",
    "WorkerConfig",
    "autoconfigure",
    "catalog",
    "env_vars",
    "format_go_duration",
    "load_config",
    "option",
    "parse_go_bool",
    "parse_go_duration",
    "postgres_conninfo",
    "read_settings",
    "section",
    "to_json",
    "validate",
]


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> KumaCpConfig:
    """kuma-cp's settings (`read_settings`), then `validate`."""
    cfg = read_settings(KumaCpConfig, path, os.environ if env is None else env)
    validate(cfg)
    return cfg
