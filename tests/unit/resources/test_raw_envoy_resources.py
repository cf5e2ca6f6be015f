"""A ProxyTemplate's raw Envoy resources are checked alike in every process.

The tests of what a resource may name run the parser in a fresh interpreter that imports only
what the split kuma-api's validation imports: the test session has imported the generator,
whose protobuf modules would hide a message the parser cannot find on its own. The error
messages for v2 forms are checked in this one."""

from __future__ import annotations

import re

import pytest

from kuma.resources.proxytemplate import parse_envoy_resource
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
import hashlib, json, re, sys
from google.protobuf import json_format
from kuma.resources.envoy_types import _IMPORTED
from kuma.resources.proxytemplate import parse_envoy_resource
digest = error = ""
types = []
try:
    message = parse_envoy_resource(sys.stdin.read())
    digest = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()
    text = json_format.MessageToJson(message)
    types = re.findall(r'"@type": "type.googleapis.com/([^"]+)"', text)
except ValueError as exc:
    error = str(exc)
print(json.dumps({"error": error, "imported": sorted(_IMPORTED), "digest": digest, "types": types}))
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


# As Kuma 0.3 generated and documented it (spec §8.8, §8.10): v2 names everywhere, and the
# router named without a config.
V2_LISTENER = """
'@type': type.googleapis.com/envoy.api.v2.Listener
name: raw
address: {socketAddress: {address: 127.0.0.1, portValue: 9000}}
listenerFilters: [{name: envoy.listener.tls_inspector}]
filterChains:
- filters:
  - name: envoy.tcp_proxy
    typedConfig:
      '@type': type.googleapis.com/envoy.config.filter.network.tcp_proxy.v2.TcpProxy
      cluster: pass_through
      statPrefix: pass_through
      accessLog:
      - name: envoy.file_access_log
        typedConfig:
          '@type': type.googleapis.com/envoy.config.accesslog.v2.FileAccessLog
          path: /dev/stdout
- filters:
  - name: envoy.http_connection_manager
    typedConfig:
      '@type': type.googleapis.com/envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager
      statPrefix: raw
      httpFilters: [{name: envoy.router}]
      routeConfig: {name: r}
"""  # noqa: E501 (a type URL)


def test_envoy_v2_names_inside_a_resource_are_read_as_their_v3_successors() -> None:
    """Envoy 1.40 refuses v2 type URLs (tests/xds_ads/test_envoy_validate.py shows the same
    template accepted by Envoy); xds-protos still has the v2 messages, so without the mapping
    they parsed here and were NACKed there."""
    got = parse_in_fresh_process(V2_LISTENER)
    assert got["error"] == ""
    assert sorted(got["types"]) == [  # type: ignore[call-overload]
        "envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "envoy.extensions.filters.http.router.v3.Router",
        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    ]


def test_a_v2_name_without_a_v3_successor_is_refused() -> None:
    resource = V2_LISTENER.replace(
        "envoy.config.accesslog.v2.FileAccessLog", "envoy.config.filter.network.gone.v2.Gone"
    )
    assert parse_in_fresh_process(resource)["error"] == (
        "envoy.config.filter.network.gone.v2.Gone is an Envoy v2 type, which Envoy 1.40 does not "
        "take, and no v3 type replaces it; name the v3 type"
    )


def test_a_v2_field_the_v3_message_dropped_is_named() -> None:
    resource = V2_LISTENER.replace("statPrefix: raw", "statPrefix: raw\n      idleTimeout: 5s")
    error = str(parse_in_fresh_process(resource)["error"])
    assert "HttpConnectionManager" in error and "idleTimeout" in error, error


def test_a_filter_without_a_config_envoy_cannot_find_is_refused() -> None:
    resource = V2_LISTENER.replace("{name: envoy.router}", "{name: envoy.cors}")
    assert parse_in_fresh_process(resource)["error"] == (
        '"envoy.cors" has no typedConfig: Envoy 1.40 finds filters, access loggers and transport '
        "sockets by their config's type"
    )


@pytest.mark.parametrize(
    ("v2_form", "hint"),
    [
        (
            "filterChains: [{filters: [{name: envoy.tcp_proxy, config: {cluster: c}}]}]",
            'in Envoy v3, config became a "typedConfig" with its "@type"',
        ),
        (
            "filterChains: [{tlsContext: {}}]",
            'in Envoy v3, tlsContext became a "transportSocket" named envoy.transport_sockets.tls',
        ),
    ],
)
def test_a_v2_field_v3_dropped_is_refused_with_what_to_write(v2_form: str, hint: str) -> None:
    """What Kuma 0.3 generated and v3 dropped: the 400 says the v3 form (v3-mapping.md)."""
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_envoy_resource(
            "'@type': type.googleapis.com/envoy.api.v2.Listener\nname: l\n" + v2_form
        )


def test_original_dst_lb_is_refused_with_what_to_write() -> None:
    cluster = (
        "'@type': type.googleapis.com/envoy.api.v2.Cluster\n"
        "name: pass_through\ntype: ORIGINAL_DST\nlbPolicy: ORIGINAL_DST_LB\n"
    )
    with pytest.raises(ValueError, match='"type: ORIGINAL_DST" with "lbPolicy: CLUSTER_PROVIDED"'):
        parse_envoy_resource(cluster)
