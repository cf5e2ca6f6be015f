"""A ProxyTemplate's raw Envoy resources are checked alike in every process.

Each test runs the parser in a fresh interpreter that imports only what the split kuma-api's
validation imports: the test session has imported the generator, whose protobuf modules would
hide a message the parser cannot find on its own."""

from __future__ import annotations

from tests.fresh_python import json_printed_by

TCP_LISTENER = """
'@type': type.googleapis.com/envoy.config.listener.v3.Listener
name: raw
address: {socketAddress: {address: 127.0.0.1, portValue: 9000}}
filterChains:
- filters:
  - name: envoy.filters.network.rbac
    typedConfig:
      '@type': type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
      statPrefix: raw.
      rules: {policies: {all: {permissions: [{any: true}], principals: [{any: true}]}}}
  - name: envoy.filters.network.http_connection_manager
    typedConfig:
      '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      statPrefix: raw
      routeConfig: {name: r}
      httpFilters:
      - name: envoy.filters.http.router
        typedConfig:
          '@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""  # noqa: E501 (a type URL)

_PARSE = """
import hashlib, json, sys
from kuma.resources.proxytemplate import _IMPORTED, parse_envoy_resource
digest = error = ""
try:
    message = parse_envoy_resource(sys.stdin.read())
    digest = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()
except ValueError as exc:
    error = str(exc)
print(json.dumps({"error": error, "imported": sorted(_IMPORTED), "digest": digest}))
"""


def parse_in_fresh_process(resource: str) -> dict[str, object]:
    return json_printed_by(_PARSE, stdin=resource)  # type: ignore[no-any-return]


def test_nested_typed_configs_are_found_without_the_generator() -> None:
    got = parse_in_fresh_process(TCP_LISTENER)
    assert got["error"] == ""
    assert "envoy.extensions.filters.network.rbac.v3" in got["imported"]  # type: ignore[operator]


def test_a_nested_type_outside_envoys_api_is_refused_and_nothing_is_imported() -> None:
    resource = TCP_LISTENER.replace(
        "envoy.extensions.filters.network.rbac.v3.RBAC", "os.path.Evil"
    ).replace("envoy.extensions.filters.http.router.v3.Router", "envoy.nothing.here.v3.Foo")
    got = parse_in_fresh_process(resource)
    assert "Can not find message descriptor by type_url: type.googleapis.com/os.path.Evil" in str(
        got["error"]
    )
    imported = got["imported"]
    assert isinstance(imported, list)
    assert not any(p.startswith(("os", "envoy.nothing")) for p in imported)


def test_the_same_resource_has_the_same_bytes_in_every_process() -> None:
    """A map inside a typed_config is packed in a fixed order: two xDS replicas give the
    template's listener one version."""
    policies = ", ".join(
        f"p{i}: {{permissions: [{{any: true}}], principals: [{{any: true}}]}}" for i in range(12)
    )
    resource = TCP_LISTENER.replace(
        "rules: {policies: {all: {permissions: [{any: true}], principals: [{any: true}]}}}",
        f"rules: {{policies: {{{policies}}}}}",
    )
    digests = [parse_in_fresh_process(resource)["digest"] for _ in range(3)]
    assert digests[0] and digests == [digests[0]] * 3
