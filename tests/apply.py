"""Write resources given as YAML (one or several documents) straight through a core's manager,
as `kumactl apply` would through the API."""

from __future__ import annotations

from kuma.resources import wire
from kuma.wiring import Core


def apply(core: Core, text: str) -> None:
    for doc in wire.parse_yaml_documents(text):
        core.manager.upsert(wire.from_json(doc))
