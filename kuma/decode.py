"""JSON and YAML from outside, decoded with a bound on their depth.

Python's parsers and everything that walks their output recurse, so a request of a few kilobytes
of brackets ended in RecursionError: a 500, and a traceback in the log. Here it is a ValueError
like any other malformed input, which each caller answers as its own bad request.

YAML goes through libyaml when PyYAML has it (its wheels do): PyYAML's own parser takes time
quadratic in the depth (half a second of CPU for 2 kB of brackets), libyaml milliseconds, and
it refuses past 1,000 levels by itself."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Far above any resource (a Mesh or Dataplane nests about eight levels; a raw Envoy resource in
# a ProxyTemplate some twenty) and far below the interpreter's recursion limit.
MAX_DEPTH = 100
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


def _bounded(data: Any, limit: int = MAX_DEPTH) -> Any:
    """`data`, unless lists and mappings in it nest deeper than `limit` (walked without
    recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise ValueError(TOO_DEEP)
        stack.extend((child, depth + 1) for child in children)
    return data


@contextlib.contextmanager
def _refusing_depth() -> Iterator[None]:
    """A parser's own refusal of deep input (RecursionError, libyaml's limit) as ours."""
    try:
        yield
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):
            raise ValueError(TOO_DEEP) from None
        raise


def load_json(raw: str | bytes) -> Any:
    """`json.loads`; ValueError (UnicodeDecodeError is one) for malformed or too deep input."""
    with _refusing_depth():
        return _bounded(json.loads(raw))


def load_yaml(text: str) -> Any:
    """As `yaml.safe_load`; yaml.YAMLError when malformed, ValueError when too deep."""
    with _refusing_depth():
        return _bounded(yaml.load(text, Loader=_LOADER))  # noqa: S506 (a safe loader)


def load_yaml_documents(text: str) -> list[Any]:
    """Every document of a (multi-document) YAML text, None for empty ones; as `load_yaml`."""
    with _refusing_depth():
        docs = list(yaml.load_all(text, Loader=_LOADER))  # noqa: S506 (a safe loader)
        return _bounded(docs, MAX_DEPTH + 1)  # the list is a level
