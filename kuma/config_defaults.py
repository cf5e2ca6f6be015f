"""`kuma-cp.defaults.yaml`: every kuma-cp setting with its default and its env var, generated
from the config schema (kuma/config/schema.py), as Kuma shipped one. Regenerate with

    python -m kuma.config_defaults > kuma-cp.defaults.yaml

(tests/unit/test_config_defaults.py fails when the file and the schema disagree)."""

from __future__ import annotations

from typing import Any

import yaml

from kuma.config import ENV_VARS, KumaCpConfig, to_json

HEADER = """\
# kuma-cp's settings and their defaults, generated from the config schema (kuma/config/schema.py):
#   python -m kuma.config_defaults > kuma-cp.defaults.yaml
# Give kuma-cp a file with the keys you change (`kuma-cp run -c FILE`); each key's env var,
# named beside it, wins over the file.
"""


def _scalar(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.removesuffix("\n...\n").rstrip("\n")


def _render(section: dict[str, Any], path: tuple[str, ...], depth: int, out: list[str]) -> None:
    envs = {key: env for env, key in ENV_VARS.items()}
    indent = "  " * depth
    for key, value in section.items():
        where = (*path, key)
        if isinstance(value, dict):
            out.append(f"{indent}{key}:")
            _render(value, where, depth + 1, out)
            continue
        comment = f"  # {envs['.'.join(where)]}"
        if isinstance(value, str) and "\n" in value:
            out.append(f"{indent}{key}: |{comment}")
            out.extend(f"{indent}  {line}" for line in value.splitlines())
        else:
            out.append(f"{indent}{key}: {_scalar(value)}{comment}")


def render() -> str:
    out = [HEADER]
    _render(to_json(KumaCpConfig(), mask_passwords=False), (), 0, out)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
