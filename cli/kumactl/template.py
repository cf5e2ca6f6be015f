"""The `--var` templating of `kumactl apply` (spec §6.5): mustache variables only.

`{{name}}`, `{{{name}}}` and `{{& name}}` are replaced by the variable's value, unknown names by
the empty string, `{{! comment}}` by nothing. Values are inserted as they are: Kuma's renderer
HTML-escaped `{{name}}`, which only ever corrupts YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from cli.kumactl.errors import CliError

_TAG = re.compile(
    r"\{\{\{\s*(?P<raw>[^{}]*?)\s*\}\}\}|\{\{\s*(?P<sigil>[&!]?)\s*(?P<name>[^{}]*?)\s*\}\}"
)


def render(text: str, variables: Mapping[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group("sigil") == "!":
            return ""
        return variables.get(m.group("raw") if m.group("raw") is not None else m.group("name"), "")

    return _TAG.sub(replace, text)


def parse_pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    """`key=value` flag values (cobra's stringToString) as a dict; later keys win."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise CliError(
                f'invalid argument "{value}" for "{flag}" flag: '
                f"{value} must be formatted as key=value"
            )
        out[key] = val
    return out
