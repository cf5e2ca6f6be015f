"""Envoy message types named inside a raw resource, as Envoy 1.40 takes them.

A ProxyTemplate's raw resource names messages by type URL: its own `@type`, and a nested
`@type` for each filter's, access log's or transport socket's `typedConfig`. Three things make
those names work the same in every process and on Envoy 1.40:

- The protobuf modules of a named package are imported on demand (only Envoy's own API
  packages), so the JSON parser finds them in a process that never imported them itself.
- Kuma 0.3 wrote Envoy v2 names (`envoy.config.filter.network.tcp_proxy.v2.TcpProxy`). xds-protos
  still ships the v2 messages, so they parse, but Envoy 1.40 refuses them. A v2 name is read as
  the v3 message that declares it its predecessor (`udpa.annotations.versioning`), found by the
  package moves of the v2-to-v3 migration; a v2 name without one is refused.
- A filter or transport socket named without a config (`{name: envoy.router}`, as Kuma 0.3
  generated it) is given its config-less v3 message; Envoy 1.40 finds them by their config's
  type only.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import pkgutil
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

TYPE_PREFIX = "type.googleapis.com/"

# Packages whose protobuf modules a raw resource may name: Envoy's API and the UDPA/xDS protos
# it imports. Nothing else is ever imported for a user.
_PROTO_ROOTS = ("envoy", "udpa", "xds")
_PACKAGE = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")
_IMPORTED: set[str] = set()  # packages imported here: at most every installed one


def import_package(package: str) -> None:
    """Import the protobuf modules (`*_pb2`) of one Envoy API package, so that the JSON parser
    finds the messages a nested `@type` names. A process imports only the modules its own code
    uses: without this, the split kuma-api refused a listener's tcp_proxy typed_config that
    `kuma-cp run` (which imports the generator) accepted. A name that is no such package is
    not remembered: what a client sends cannot grow memory."""
    if package in _IMPORTED:
        return
    if not _PACKAGE.fullmatch(package) or package.split(".")[0] not in _PROTO_ROOTS:
        return
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return
    if spec is None or spec.submodule_search_locations is None:
        return
    for module in pkgutil.iter_modules(spec.submodule_search_locations):
        if module.name.endswith("_pb2"):
            # One that cannot be imported leaves its messages unknown: the parser names them.
            with contextlib.suppress(ImportError):
                importlib.import_module(f"{package}.{module.name}")
    _IMPORTED.add(package)


def _split(full_name: str) -> tuple[str, str]:
    """(package, message) of a full name; a message's name starts at its first capitalised
    part (Outer.Inner too)."""
    parts = full_name.split(".")
    package = list(itertools.takewhile(lambda p: not p[:1].isupper(), parts))
    return ".".join(package), ".".join(parts[len(package) :])


# Where the v2-to-v3 migration moved each v2 package: candidate v3 packages, tried in order.
_MOVES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), targets)
    for pattern, targets in (
        (r"envoy\.api\.v2\.auth", ("envoy.extensions.transport_sockets.tls.v3",)),
        (r"envoy\.api\.v2\.(core|route|listener|cluster|endpoint)", (r"envoy.config.\1.v3",)),
        (
            r"envoy\.api\.v2",
            tuple(f"envoy.config.{p}.v3" for p in ("listener", "cluster", "endpoint", "route")),
        ),
        (
            r"envoy\.config\.filter\.(network|http|listener|udp)\.(\w+)\.v2\w*",
            (r"envoy.extensions.filters.\1.\2.v3",),
        ),
        (
            r"envoy\.config\.accesslog\.v2",
            tuple(f"envoy.extensions.access_loggers.{p}.v3" for p in ("file", "grpc")),
        ),
        (r"envoy\.config\.(\w+)\.v2\w*", (r"envoy.config.\1.v3",)),
    )
)
_V2_SEGMENT = re.compile(r"\.v2(alpha\d*)?(\.|$)")
_SUCCESSORS: dict[str, str] = {}  # v2 name -> v3 name, found ones only (a finite set)


def _is_v2(package: str) -> bool:
    return package.startswith("envoy.") and _V2_SEGMENT.search(package) is not None


def v3_name(full_name: str) -> str:
    """The name Envoy 1.40 takes for a message: a v2 name's v3 successor, any other unchanged.
    Raises ValueError for a v2 name that has none."""
    package, message = _split(full_name)
    if not _is_v2(package):
        return full_name
    found = _SUCCESSORS.get(full_name)
    if found is not None:
        return found
    for pattern, targets in _MOVES:
        match = pattern.fullmatch(package)
        if match is None:
            continue
        for target in targets:
            candidate = f"{match.expand(target)}.{message}"
            if _predecessor(candidate) == full_name:
                _SUCCESSORS[full_name] = candidate
                return candidate
        break
    raise ValueError(
        f"{full_name} is an Envoy v2 type, which Envoy 1.40 does not take, and no v3 type "
        "replaces it; name the v3 type"
    )


def _predecessor(full_name: str) -> str:
    """The v2 name a v3 message declares it replaces ("" if none, or no such message)."""
    from udpa.annotations import versioning_pb2

    import_package(_split(full_name)[0])
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return ""
    options = descriptor.GetOptions()
    return str(options.Extensions[versioning_pb2.versioning].previous_message_type)


def upgrade_nested_types(data: Any) -> None:
    """Rename every nested `@type` of parsed YAML/JSON to its v3 name, in place, and import
    the packages they name. Raises ValueError for a v2 type without a v3 successor."""
    if isinstance(data, dict):
        type_url = data.get("@type")
        if isinstance(type_url, str) and type_url.startswith(TYPE_PREFIX):
            full_name = v3_name(type_url[len(TYPE_PREFIX) :])
            data["@type"] = TYPE_PREFIX + full_name
            import_package(_split(full_name)[0])
        for value in data.values():
            upgrade_nested_types(value)
    elif isinstance(data, list):
        for item in data:
            upgrade_nested_types(item)


# Extensions Envoy runs without a config, by their v2 and v3 names: the config-less message
# their typed_config gets.
_CONFIGLESS = {
    "envoy.transport_sockets.raw_buffer": (
        "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
    ),
    "raw_buffer": "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
} | {
    name: f"envoy.extensions.filters.{kind}.{filter_}.v3.{message}"
    for kind, filter_, message, names in (
        ("http", "router", "Router", ("envoy.router", "envoy.filters.http.router")),
        ("http", "grpc_web", "GrpcWeb", ("envoy.grpc_web", "envoy.filters.http.grpc_web")),
        ("network", "echo", "Echo", ("envoy.echo", "envoy.filters.network.echo")),
        *(
            ("listener", f, m, (f"envoy.listener.{f}", f"envoy.filters.listener.{f}"))
            for f, m in (
                ("tls_inspector", "TlsInspector"),
                ("original_dst", "OriginalDst"),
                ("http_inspector", "HttpInspector"),
            )
        ),
    )
    for name in names
}
# Messages that name an extension (filter, logger, transport socket) and configure it through
# `typed_config`.
_TYPED_BY_NAME = frozenset(
    {
        "envoy.config.core.v3.TransportSocket",
        "envoy.config.listener.v3.Filter",
        "envoy.config.listener.v3.ListenerFilter",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
        "envoy.config.accesslog.v3.AccessLog",
    }
)


def _complete_filter(message: Message) -> None:
    if message.DESCRIPTOR.full_name not in _TYPED_BY_NAME:
        return
    if message.WhichOneof("config_type") is not None:
        return
    name: str = message.name  # type: ignore[attr-defined]
    configless = _CONFIGLESS.get(name)
    if configless is None:
        raise ValueError(
            f'"{name}" has no typedConfig: Envoy 1.40 finds filters, access loggers and '
            "transport sockets by their config's type"
        )
    import_package(_split(configless)[0])
    message.typed_config.type_url = TYPE_PREFIX + configless  # type: ignore[attr-defined]


def finish(message: Message) -> None:
    """Complete config-less filters and serialize every nested `Any` again, deterministically,
    in place. The JSON parser packs a typed_config without determinism, so a map in one (RBAC
    policies) is written in an order seeded per process, and two xDS replicas would give the
    template's resource two versions."""
    _visit(message, _complete_filter)


def _visit(message: Message, fn: Callable[[Message], None]) -> None:
    fn(message)
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            items = value.values() if entry_value.type == FieldDescriptor.TYPE_MESSAGE else ()
        else:
            items = value if field.is_repeated else (value,)
        for item in items:
            if item.DESCRIPTOR.full_name != "google.protobuf.Any":
                _visit(item, fn)
                continue
            inner = message_factory.GetMessageClass(_descriptor(item.TypeName()))()
            item.Unpack(inner)
            _visit(inner, fn)
            item.value = inner.SerializeToString(deterministic=True)


def _descriptor(full_name: str) -> Descriptor:
    return descriptor_pool.Default().FindMessageTypeByName(full_name)


# What Envoy v3 took the place of the v2 fields and values Kuma 0.3 generated and users copied
# into templates (the ones v3 has dropped outright; deprecated ones still parse).
_V3_FORMS = {
    "config": 'a "typedConfig" with its "@type"',
    "tlsContext": (
        'a "transportSocket" named envoy.transport_sockets.tls whose typedConfig is an '
        "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext (clusters) or "
        "DownstreamTlsContext (filter chains)"
    ),
    "ORIGINAL_DST_LB": '"type: ORIGINAL_DST" with "lbPolicy: CLUSTER_PROVIDED"',
    "verifySubjectAltName": (
        '"matchTypedSubjectAltNames", e.g. [{sanType: URI, matcher: {exact: <name>}}]'
    ),
}
_DROPPED = re.compile(r'has no field named "(\w+)"|Invalid enum value (\w+) ')


def v3_hint(parse_error: str) -> str:
    """`parse_error` with, when it names a v2 field or value v3 dropped, what to write instead."""
    found = _DROPPED.search(parse_error)
    name = found and (found.group(1) or found.group(2))
    if not name or name not in _V3_FORMS:
        return parse_error
    return f"{parse_error.rstrip('.')}; in Envoy v3, {name} became {_V3_FORMS[name]}"
