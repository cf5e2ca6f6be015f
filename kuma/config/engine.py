"""The settings engine: a tree of frozen dataclasses (`option` leaves, `section` branches) read
from defaults, an optional YAML file and env vars, and written back as JSON (`to_json`). It
knows nothing of kuma-cp's keys: kuma-cp's schema (`schema.py`) and the injector's both run on it.

A leaf's YAML key is its attribute name in camelCase; its env var is `KUMA_` + the upper-cased
attribute path, unless the field's metadata names another. Reading follows Kuma's loaders:
- An unknown key in the file is an error naming the key: a typo must not be silently ignored
  (Kuma's yaml.v2 loader ignored it).
- Values must have the YAML type of their field (`port: "5"` is an error), as with yaml.v2; a null
  leaf (`xdsHost:`) means the field's zero value, also as with yaml.v2.
- Env var text is parsed as envconfig parses it (Go's ParseBool and ParseDuration, comma lists).
"""

from __future__ import annotations

import difflib
import re
import typing
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass
from datetime import timedelta
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kuma.durations import format_go_duration, parse_duration
from kuma.errors import ConfigError

MASK = "*****"
_T = TypeVar("_T")


def option(
    default: Any,
    *,
    env: str | None = None,
    unsigned: bool = False,
    secret: str | None = None,
    yaml_text: bool = False,
) -> Any:
    """A leaf setting. `unsigned`: Go uint32 (negative is a type error, not a validation error);
    `secret`: "value" or "url" (how `to_json` masks it); `yaml_text`: holds a YAML document."""
    meta = {"env": env, "unsigned": unsigned, "secret": secret, "yaml_text": yaml_text}
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    return field(default_factory=cls)


# --- schema walking ---


def _is_section(hint: Any) -> typing.TypeGuard[type]:
    return isinstance(hint, type) and is_dataclass(hint)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_SCHEMAS: dict[type, dict[str, tuple[Field[Any], Any]]] = {}


def _schema(cls: type) -> dict[str, tuple[Field[Any], Any]]:
    """YAML key -> (field, resolved type) of one section, in declaration order."""
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        _SCHEMAS[cls] = {_camel(f.name): (f, hints[f.name]) for f in fields(cls)}
    return _SCHEMAS[cls]


@dataclass(frozen=True, slots=True)
class _Leaf:
    attrs: tuple[str, ...]  # python attribute path
    key: str  # dotted YAML key path
    env: str
    kind: type  # int | bool | str | timedelta | tuple
    meta: Mapping[str, Any]


def _leaves(cls: type, attrs: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Iterator[_Leaf]:
    for key, (f, hint) in _schema(cls).items():
        if _is_section(hint):
            yield from _leaves(hint, (*attrs, f.name), (*keys, key))
        else:
            env = f.metadata["env"] or "KUMA_" + "_".join((*attrs, f.name)).upper()
            kind = typing.get_origin(hint) or hint
            yield _Leaf((*attrs, f.name), ".".join((*keys, key)), env, kind, f.metadata)


def env_vars(root_cls: type) -> Mapping[str, str]:
    """Every env var the settings tree `root_cls` reads -> the YAML key path it sets."""
    return {leaf.env: leaf.key for leaf in _leaves(root_cls)}


# --- value parsing ---

_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_EXPECTED = {
    int: "an integer",
    bool: "a boolean",
    str: "a string",
    timedelta: 'a duration such as "1s"',
    tuple: "a list of strings",
}
_YAML_TAG = "tag:yaml.org,2002:"


def parse_go_bool(text: str) -> bool:
    """Go's strconv.ParseBool; raise ValueError for anything else."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r}")


def parse_go_duration(text: str) -> timedelta:
    """Go's time.ParseDuration (`0s`, `500ms`, `1h30m`, `1.5s`, `us`, `µs`, `ns`), else ValueError.

    Precision is a microsecond (timedelta's): sub-microsecond parts are lost.
    """
    return parse_duration(text)


def _invalid(where: str, problem: str) -> ConfigError:
    return ConfigError(f"Invalid configuration: {where}: {problem}")


def _expected(leaf_kind: type, unsigned: bool) -> str:
    return "a non-negative integer" if leaf_kind is int and unsigned else _EXPECTED[leaf_kind]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _from_text(text: str, kind: type, meta: Mapping[str, Any], where: str) -> Any:
    """Env-var text -> value, with envconfig's syntax (ParseBool, ParseDuration, comma lists)."""
    try:
        if kind is str:
            return text
        if kind is bool:
            return parse_go_bool(text)
        if kind is timedelta:
            return parse_go_duration(text)
        if kind is tuple:
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if re.fullmatch(r"[+-]?\d+", text) and not (meta["unsigned"] and int(text) < 0):
            return int(text)
    except ValueError:
        pass
    raise _invalid(where, f"expected {_expected(kind, meta['unsigned'])}, got {_quote(text)}")


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _quote(str(node.value))


def _from_node(node: Node, kind: type, meta: Mapping[str, Any], where: str, loader: Any) -> Any:
    """YAML node -> value, with yaml.v2's typing: scalars must carry the field's YAML type."""
    tag = node.tag.removeprefix(_YAML_TAG)
    if isinstance(node, ScalarNode) and tag == "null":
        return kind()  # yaml.v2 sets the zero value
    if meta["yaml_text"] and isinstance(node, MappingNode):
        return yaml.safe_dump(loader.construct_object(node, deep=True), sort_keys=False)
    if isinstance(node, ScalarNode):
        if kind is str:
            return node.value  # the text as written, like yaml.v2 (`password: 0123` stays "0123")
        if kind is bool and tag == "bool":
            return loader.construct_object(node)
        if kind is int and tag == "int":
            value = loader.construct_object(node)
            if not (meta["unsigned"] and value < 0):
                return value
        if kind is timedelta:
            try:
                return parse_go_duration(node.value)
            except ValueError:
                pass
    if kind is tuple and isinstance(node, SequenceNode):
        items = node.value
        if all(isinstance(item, ScalarNode) for item in items):
            return tuple(item.value for item in items)
    raise _invalid(where, f"expected {_expected(kind, meta['unsigned'])}, got {_describe(node)}")


def _merge_node(node: Node, cls: type, where: str, out: dict[str, Any], loader: Any) -> None:
    """Collect the file's values of section `cls` into `out` (python attribute names, nested)."""
    if isinstance(node, ScalarNode) and node.tag == _YAML_TAG + "null":
        return  # an empty section keeps its defaults
    if not isinstance(node, MappingNode):
        raise _invalid(where or "<top level>", f"expected a mapping, got {_describe(node)}")
    schema = _schema(cls)
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else _describe(key_node)
        here = f"{where}.{key}" if where else key
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise _invalid(here, "unknown key" + hint)
        f, hint_type = schema[key]
        if _is_section(hint_type):
            _merge_node(value_node, hint_type, here, out.setdefault(f.name, {}), loader)
        else:
            kind = typing.get_origin(hint_type) or hint_type
            out[f.name] = _from_node(value_node, kind, f.metadata, here, loader)


def _read_file(path: str, root_cls: type) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f'Failed to access configuration file "{path}"') from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        out: dict[str, Any] = {}
        if root is not None:
            _merge_node(root, root_cls, "", out, loader)
        return out
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f'Invalid configuration: could not parse "{path}" as YAML: {exc.problem}{at}'
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f'Invalid configuration: could not parse "{path}": {exc}') from exc
    finally:
        loader.dispose()


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f, hint in _schema(cls).values():
        if f.name in values:
            kwargs[f.name] = _build(hint, values[f.name]) if _is_section(hint) else values[f.name]
    return cls(**kwargs)


def read_settings(root_cls: type[_T], path: str | None, environ: Mapping[str, str]) -> _T:
    """The settings tree `root_cls` (dataclasses built with `option` and `section`): defaults,
    then the YAML file (if any), then the env vars of its leaves (a set var always wins). Every
    problem raises ConfigError naming the key or env var; validation is the caller's."""
    values = _read_file(path, root_cls) if path is not None else {}
    for leaf in _leaves(root_cls):
        if leaf.env in environ:
            where = f"{leaf.env} ({leaf.key})"
            target = values
            for attr in leaf.attrs[:-1]:
                target = target.setdefault(attr, {})
            target[leaf.attrs[-1]] = _from_text(environ[leaf.env], leaf.kind, leaf.meta, where)
    built: _T = _build(root_cls, values)
    return built


# --- the JSON view ---


def _mask_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:  # unparseable: hide it all rather than risk showing a password
        return MASK
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


def _json_value(value: Any, meta: Mapping[str, Any], mask: bool) -> Any:
    if mask and value and meta["secret"] == "value":
        return MASK
    if mask and meta["secret"] == "url":
        return _mask_url(value)
    if isinstance(value, timedelta):
        return format_go_duration(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(cfg: object, mask_passwords: bool = True) -> dict[str, Any]:
    """The config (or one section of it) as spec §2.3 YAML keys, durations as Go strings, secrets
    (postgres password, admin token, URL passwords) as `*****` unless `mask_passwords` is False."""
    out: dict[str, Any] = {}
    for key, (f, hint) in _schema(type(cfg)).items():
        value = getattr(cfg, f.name)
        out[key] = (
            to_json(value, mask_passwords)
            if _is_section(hint)
            else _json_value(value, f.metadata, mask_passwords)
        )
    return out
