"""Kuma's field paths for violations (spec §3.14): `networking.inbound[0].interface`,
`sources[0].match["region"]`. Map keys are quoted like Go's `%q`."""

from __future__ import annotations

import json


def field(root: str, name: str) -> str:
    return f"{root}.{name}" if root else name


def index(root: str, i: int) -> str:
    return f"{root}[{i}]"


def key(root: str, k: str) -> str:
    # json.dumps gives the double quotes and escapes Go's %q gives for printable text.
    return f"{root}[{json.dumps(k, ensure_ascii=False)}]"
