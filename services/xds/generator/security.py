"""mTLS (spec §8.11) and TrafficPermission RBAC (§8.12), in Envoy v3 form.

Generation calls the hook, when one is given, for every inbound listener and every outbound
cluster; without a hook the mesh is plaintext and every inbound is open. `mesh_mtls(snapshot)`
is the hook of a snapshot: None when the Mesh has mTLS off.

With mTLS on:
- Both sides use two secrets delivered **over the ADS stream** (`sds_config: {ads: {}}`), so an
  Envoy needs no second connection, no SDS cluster in its bootstrap and no second credential:
  `identity_cert` (this dataplane's key and `spiffe://{mesh}/{service}` certificate) and
  `mesh_ca` (the mesh's CA roots). The xDS service puts both in the node's snapshot.
- Inbound listeners require a client certificate signed by the mesh CA whose URI SAN is in the
  mesh (`spiffe://{mesh}/` prefix); outbound clusters present the identity and accept only a
  server whose URI SAN is exactly `spiffe://{mesh}/{destination service}`.
- Every inbound listener starts with `envoy.filters.network.rbac`: one ALLOW policy per
  TrafficPermission whose destinations match the inbound's tags (policy key = its name), with
  one principal per source: `spiffe://{mesh}/{service}` exactly, or any identity of the mesh
  for `*`. No permission: `rules: {}`, every connection denied (as Kuma, spec §16.4).

Closing connections a change no longer allows: a permission change (or mTLS on/off) rewrites
the inbound listener's filter chain. New connections get the new chain at once (measured: denied
about 50 ms after the delete was written). Connections already open stay on the old chain, which
Envoy drains and then closes when its drain time ends: the bound is Envoy's `--drain-time-s`
(Envoy's default 600 s; measured 2.03 s after the delete with `--drain-time-s 2`). This was
chosen over `max_downstream_connection_duration`, which would also cut every allowed long-lived
connection periodically. kuma-dp should start Envoy with a short `--drain-time-s` (e.g. 30 s) to
tighten the bound. Certificate rotation does not touch listeners: open connections are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from kuma.dataplane_policies import permissions_for
from kuma.resources.base import Resource
from kuma.resources.selectors import SERVICE_TAG
from services.xds.generator import builders
from services.xds.generator.snapshot import MeshSnapshot, ResourceSet

IDENTITY_CERT = "identity_cert"
MESH_CA = "mesh_ca"
TLS_SOCKET = "envoy.transport_sockets.tls"
RBAC_FILTER = "envoy.filters.network.rbac"
_RBAC_TYPE_URL = builders.type_url(network_rbac_pb2.RBAC())


@dataclass(frozen=True, eq=False)
class InboundSecurity:
    """What mTLS puts on the inbound listeners of one set of tags: shared by every dataplane
    with those tags (generator.parts), so it compares by identity."""

    transport_socket: base_pb2.TransportSocket | None = None
    # The RBAC rules of the filter placed before tcp_proxy (§8.12); None: no RBAC filter.
    rbac: rbac_pb2.RBAC | None = None

    def filters(self, listener_name: str) -> list[listener_components_pb2.Filter]:
        """The network filters before tcp_proxy on the listener `listener_name`."""
        if self.rbac is None:
            return []
        # The filter's config is its rules (field 1), the same on every listener of these tags,
        # and its stat prefix (field 2), the listener's own. A message is its fields' encodings
        # in any order, and deterministically in field order: the rules are encoded once here,
        # not copied and encoded again for every dataplane (a mesh's hundred permissions made
        # each inbound listener cost four times as much).
        prefix = network_rbac_pb2.RBAC(stat_prefix=f"{listener_name}.").SerializeToString()
        config = listener_components_pb2.Filter(name=RBAC_FILTER)
        config.typed_config.type_url = _RBAC_TYPE_URL
        config.typed_config.value = self._encoded_rules + prefix
        return [config]

    @cached_property
    def _encoded_rules(self) -> bytes:
        assert self.rbac is not None
        return network_rbac_pb2.RBAC(rules=self.rbac).SerializeToString(deterministic=True)


class MtlsHook(Protocol):
    """Hashable by everything its answers depend on: a dataplane's inbound listeners are
    rebuilt only when it changes (generator.parts)."""

    @property
    def mesh(self) -> str:
        """Outbound clusters of an mTLS mesh take `upstream_socket(mesh, service)`: they depend
        on the mesh alone and are shared by every dataplane."""
        ...

    def inbound(self, tags: Mapping[str, str]) -> InboundSecurity:
        """TLS and RBAC for the inbound listeners whose interface has `tags`."""
        ...


def spiffe_id(mesh: str, service: str | None = None) -> str:
    return f"spiffe://{mesh}" if service is None else f"spiffe://{mesh}/{service}"


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=builders.ads_source())


def _uri_san(matcher: string_pb2.StringMatcher) -> common_pb2.SubjectAltNameMatcher:
    return common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=matcher
    )


def common_tls_context(peer: string_pb2.StringMatcher) -> tls_pb2.CommonTlsContext:
    """Present `identity_cert`; trust `mesh_ca` and only peers whose URI SAN matches `peer`."""
    validation = common_pb2.CertificateValidationContext(
        match_typed_subject_alt_names=[_uri_san(peer)]
    )
    return tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(IDENTITY_CERT)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=validation,
            validation_context_sds_secret_config=_sds(MESH_CA),
        ),
    )


def _socket(
    context: tls_pb2.DownstreamTlsContext | tls_pb2.UpstreamTlsContext,
) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=builders.pack(context))


def rbac_rules(
    mesh: str, tags: Mapping[str, str], permissions: Sequence[Resource]
) -> rbac_pb2.RBAC:
    rules = rbac_pb2.RBAC(action=rbac_pb2.RBAC.ALLOW)
    for permission in permissions_for(tags, permissions):  # as the API reports them
        principals = []
        for source in permission.spec.sources:
            service = source.match.get(SERVICE_TAG, "*")
            name = (
                string_pb2.StringMatcher(prefix=spiffe_id(mesh) + "/")
                if service == "*"
                else string_pb2.StringMatcher(exact=spiffe_id(mesh, service))
            )
            principals.append(
                rbac_pb2.Principal(
                    authenticated=rbac_pb2.Principal.Authenticated(principal_name=name)
                )
            )
        if principals:
            rules.policies[permission.name].CopyFrom(
                rbac_pb2.Policy(permissions=[rbac_pb2.Permission(any=True)], principals=principals)
            )
    return rules


@dataclass(frozen=True)
class MeshMtls:
    """The hook of one mTLS-enabled mesh snapshot (pure: a function of the snapshot)."""

    mesh: str
    permissions: ResourceSet

    def inbound(self, tags: Mapping[str, str]) -> InboundSecurity:
        context = tls_pb2.DownstreamTlsContext(
            common_tls_context=common_tls_context(
                string_pb2.StringMatcher(prefix=spiffe_id(self.mesh) + "/")
            ),
        )
        context.require_client_certificate.value = True
        rules = rbac_rules(self.mesh, tags, self.permissions)
        return InboundSecurity(transport_socket=_socket(context), rbac=rules)


def upstream_socket(mesh: str, service: str) -> base_pb2.TransportSocket:
    """TLS for clusters of `service`: present this dataplane's identity, accept only
    `spiffe://{mesh}/{service}`."""
    peer = string_pb2.StringMatcher(exact=spiffe_id(mesh, service))
    return _socket(tls_pb2.UpstreamTlsContext(common_tls_context=common_tls_context(peer)))


def mesh_mtls(snapshot: MeshSnapshot) -> MtlsHook | None:
    """The mTLS hook of `snapshot`, or None when its Mesh has mTLS off."""
    if not snapshot.mesh.spec.mtls_enabled:
        return None
    return MeshMtls(snapshot.mesh.name, snapshot.traffic_permissions)


def identity_secret(cert_chain_pem: bytes, key_pem: bytes) -> secret_pb2.Secret:
    secret = secret_pb2.Secret(name=IDENTITY_CERT)
    secret.tls_certificate.certificate_chain.inline_bytes = cert_chain_pem
    secret.tls_certificate.private_key.inline_bytes = key_pem
    return secret


def mesh_ca_secret(bundle_pem: bytes) -> secret_pb2.Secret:
    secret = secret_pb2.Secret(name=MESH_CA)
    secret.validation_context.trusted_ca.inline_bytes = bundle_pem
    return secret
