"""The standalone SDS server (5677, TLS) with a real Envoy as its client: an Envoy configured by
hand (static listener, no ADS) takes `identity_cert` and `mesh_ca` from it with its dataplane
token, serves TLS with that identity, and receives rotated identities on the open stream; an
Envoy holding another dataplane's token gets no identity."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kuma import tokens
from services.xds.service import XdsService
from tests.apply import apply
from tests.mtls.harness import Echo, dataplane, set_mtls
from tests.xds_ads.harness import (
    EnvoyProcess,
    admin,
    endpoint,
    free_port,
    grpc_cluster,
    wait_until,
)

pytestmark = pytest.mark.envoy

TLS = "envoy.transport_sockets.tls"
TYPES = "type.googleapis.com/envoy.extensions"


def sds_secret(name: str, token: str) -> dict[str, Any]:
    """`name` from the SDS cluster, with the dataplane token in the stream's metadata."""
    service = {
        "envoy_grpc": {"cluster_name": "sds_cluster"},
        "initial_metadata": [{"key": "authorization", "value": f"Bearer {token}"}],
    }
    source = {"api_type": "GRPC", "transport_api_version": "V3", "grpc_services": [service]}
    return {
        "name": name,
        "sds_config": {"resource_api_version": "V3", "api_config_source": source},
    }


class SdsEnvoy(EnvoyProcess):
    """Node `default.{name}`: a TLS listener on `port` whose certificate and trusted CA come from
    the SDS server, proxying to `echo_port`."""

    def __init__(self, xds: XdsService, name: str, token: str, port: int, echo_port: int):
        sds_tls = {
            "name": TLS,
            "typed_config": {
                "@type": f"{TYPES}.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "validation_context": {"trusted_ca": {"inline_string": xds.cert_pem.decode()}}
                },
            },
        }
        listener_tls = {
            "name": TLS,
            "typed_config": {
                "@type": f"{TYPES}.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [sds_secret("identity_cert", token)],
                    "validation_context_sds_secret_config": sds_secret("mesh_ca", token),
                },
            },
        }
        proxy = {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": f"{TYPES}.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": "echo",
                "cluster": "echo",
            },
        }
        echo_cluster = {
            "name": "echo",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": "echo",
                "endpoints": [{"lb_endpoints": [endpoint(echo_port)]}],
            },
        }

        def build(admin_port: int, workdir: Path) -> dict[str, Any]:  # noqa: ARG001
            return {
                "node": {"id": f"default.{name}", "cluster": name},
                "admin": admin(admin_port),
                "static_resources": {
                    "clusters": [grpc_cluster("sds_cluster", xds.sds_port, sds_tls), echo_cluster],
                    "listeners": [
                        {
                            "name": "inbound",
                            "address": {
                                "socket_address": {"address": "127.0.0.1", "port_value": port}
                            },
                            "filter_chains": [
                                {"filters": [proxy], "transport_socket": listener_tls}
                            ],
                        }
                    ],
                },
            }

        super().__init__(build)


def served_identity(port: int) -> tuple[str, int, bytes]:
    """(URI SAN, serial, echoed answer) of a TLS connection to the Envoy's listener."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the workload certificate has no DNS name to check
    with (
        socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(b"hi")
        answer = tls.recv(100)
    cert = x509.load_der_x509_certificate(der)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)[0], cert.serial_number, answer


@pytest.mark.lifetime(6, 50)
def test_envoy_takes_its_identity_from_sds_and_gets_rotations(core, xds):
    set_mtls(core, True)
    echo = Echo("backend")
    port, thief_port = free_port(), free_port()
    apply(core, dataplane("backend-1", "backend", port, echo.port))
    apply(core, dataplane("web-1", "web", thief_port, echo.port))
    token = tokens.issue(core.store, "default", "backend-1")
    owner = SdsEnvoy(xds, "backend-1", token, port, echo.port)
    # Node web-1 presenting backend-1's token: a stolen token names another dataplane.
    thief = SdsEnvoy(
        xds, "web-1", tokens.issue(core.store, "default", "backend-1"), thief_port, echo.port
    )
    try:
        first = wait_until(lambda: _try_identity(port), 20, "the identity served from SDS")
        uri, serial, answer = first
        assert uri == "spiffe://default/backend"
        assert answer == b"backend:hi"  # traffic flows through the TLS listener
        assert "spiffe://default" in owner.trusted()  # mesh_ca came from SDS too
        assert any(u == "spiffe://default/backend" for u, _ in owner.identities())

        # The identity is rotated on the open SDS stream (every 3 s here) while traffic flows.
        serials = {serial}
        deadline = time.monotonic() + 15
        while len(serials) < 3 and time.monotonic() < deadline:
            uri, serial, answer = served_identity(port)
            assert (uri, answer) == ("spiffe://default/backend", b"backend:hi")
            serials.add(serial)
            time.sleep(0.2)
        assert len(serials) >= 3, f"expected two rotations, saw serials {serials}"

        # The Envoy with someone else's token never got an identity.
        assert thief.identities() == set()
        assert _try_identity(thief_port) is None
    finally:
        owner.stop()
        thief.stop()
        echo.stop()


def _try_identity(port: int) -> tuple[str, int, bytes] | None:
    try:
        return served_identity(port)
    except (OSError, ssl.SSLError):
        return None
