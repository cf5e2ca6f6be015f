"""kuma-prometheus-sd's side of MADS: where the server is (`GET /catalog`), how to reach it (TLS,
the admin token), and a stream that never gives up: each response is written to the file_sd
file and ACKed; a broken stream is opened again after a back-off (1 s, doubling to 30 s).

Trust (docs/security.md, "5676"): the admin token is only ever sent to a server whose TLS
certificate was verified (`--ca-cert-file`, else the system's trust roots), or over plaintext
to this host. Without a token, a `grpcs://` server is verified with `--ca-cert-file` when one
is given; otherwise the certificate it presents is taken as it is (Kuma 0.3.2's client skipped
verification, as nothing secret is sent), with a warning."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from cryptography import x509
from envoy.api.v2 import discovery_pb2
from envoy.api.v2.core import base_pb2
from google.rpc import status_pb2

from cli.kuma_prometheus_sd.file_sd import FileSdWriter, SdError, convert
from kuma.netutil import is_loopback
from services.xds.mads.assignments import TYPE_URL
from services.xds.mads.proto import mads_pb2, mads_pb2_grpc

log = logging.getLogger("kuma-prometheus-sd")
HTTP_TIMEOUT = 10.0
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0
SCHEMES = ("grpc", "grpcs")


@dataclass(frozen=True, slots=True)
class Settings:
    cp_address: str
    name: str
    output_file: str
    ca_cert_file: str = ""
    admin_token_file: str = ""


def _https_context(ca_file: str) -> ssl.SSLContext:
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return ssl.create_default_context()


def fetch_catalog(cp_address: str, ca_file: str = "") -> str:
    """The MADS URL the API's `/catalog` names (`apis.monitoringAssignment.url`)."""
    url = cp_address.rstrip("/") + "/catalog"
    context = _https_context(ca_file) if urlsplit(url).scheme == "https" else None
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT, context=context) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        raise SdError(
            f"unable to retrieve Catalog of Kuma APIs: {url} answered {exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SdError(f"unable to retrieve Catalog of Kuma APIs: {url}: {reason}") from None
    try:
        mads_url = json.loads(body)["apis"]["monitoringAssignment"]["url"]
        if not isinstance(mads_url, str) or not mads_url:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SdError(
            f"unable to retrieve Catalog of Kuma APIs: {url} names no monitoringAssignment.url"
        ) from None
    return mads_url


def read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise SdError(f"could not read the {what} file {path}: {exc.strerror or exc}") from None
    if not text:
        raise SdError(f"the {what} file {path} is empty")
    return text


def _first_name(pem: bytes) -> str | None:
    """A name the certificate is valid for (its first SAN, else its CN)."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
        if names:
            return names[0]
    except x509.ExtensionNotFound:
        pass
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


class Endpoint:
    """The MADS server of a `grpc://` or `grpcs://` URL and how to talk to it."""

    def __init__(self, url: str, ca_file: str = "", token_file: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise SdError(f'unsupported scheme "{parts.scheme}". Use one of [grpc grpcs]')
        if not parts.hostname or not parts.port:
            raise SdError(f"the monitoring assignment URL {url} names no host and port")
        self.url = url
        self.host, self.port = parts.hostname, parts.port
        self.target = parts.netloc
        self.tls = parts.scheme == "grpcs"
        self.ca_file = ca_file
        self.token_file = token_file
        self.ca_pem = Path(ca_file).read_bytes() if ca_file else None
        if token_file and not self.tls and not self._local():
            raise SdError(
                f"{url} is plaintext gRPC to another host: the admin token is sent only over "
                "TLS (the control plane's xdsServer.tlsEnabled) or to this host"
            )
        if self.tls and self.ca_pem is None and not token_file:
            log.warning(
                "no CA certificate given (--ca-cert-file, KUMA_CONTROL_PLANE_CA_CERT_FILE): the "
                "connection to %s is encrypted but its certificate is NOT verified",
                url,
            )

    def _local(self) -> bool:
        return self.host == "localhost" or is_loopback(self.host)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if not self.token_file:
            return ()
        token = read_secret_file(self.token_file, "admin token")
        return (("authorization", f"Bearer {token}"),)

    def channel(self) -> grpc.aio.Channel:
        if not self.tls:
            return grpc.aio.insecure_channel(self.target)
        options: list[tuple[str, Any]] = []
        if self.ca_pem is not None:
            roots: bytes | None = self.ca_pem
        elif self.token_file:
            roots = _system_roots()
        else:
            # Take what the server presents (unverified, as Kuma's client): pin it for this
            # connection, under a name it is valid for.
            presented = ssl.get_server_certificate((self.host, self.port), timeout=HTTP_TIMEOUT)
            roots = presented.encode()
            name = _first_name(roots)
            if name:
                options.append(("grpc.ssl_target_name_override", name))
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.aio.secure_channel(self.target, credentials, options=options)


def _system_roots() -> bytes | None:
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and os.path.exists(cafile):
        return Path(cafile).read_bytes()
    return None  # gRPC's own roots


def first_request(name: str) -> Any:
    return discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id=name), type_url=TYPE_URL)


def unpack(response: Any) -> list[Any]:
    out = []
    for resource in response.resources:
        assignment = mads_pb2.MonitoringAssignment()
        if resource.type_url != TYPE_URL or not resource.Unpack(assignment):
            raise ValueError(f"not a MonitoringAssignment: {resource.type_url}")
        out.append(assignment)
    return out


class Discoverer:
    """Keeps `writer`'s file equal to the assignments the server sends."""

    def __init__(
        self,
        endpoint: Endpoint,
        name: str,
        writer: FileSdWriter,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        self.writer = writer
        self.sleep = sleep
        self.responses = 0

    async def run(self) -> None:
        backoff = FIRST_BACKOFF
        stream_id = 0
        while True:
            stream_id += 1
            seen = self.responses
            try:
                await self.stream(stream_id)
                log.info("xDS stream %d closed by the server", stream_id)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.error(
                    "xDS stream %d terminated with an error: %s: %s",
                    stream_id,
                    exc.code().name,
                    exc.details(),
                )
            except (SdError, OSError, ValueError) as exc:
                log.error("xDS stream %d terminated with an error: %s", stream_id, exc)
            if self.responses > seen:
                backoff = FIRST_BACKOFF  # it worked for a while: start over
            await self.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def stream(self, stream_id: int) -> None:
        log.info("connecting to the Monitoring Assignment server at %s", self.endpoint.url)
        requests: asyncio.Queue[Any] = asyncio.Queue()

        async def outgoing() -> AsyncIterator[Any]:
            while True:
                yield await requests.get()

        metadata = self.endpoint.metadata()
        async with self.endpoint.channel() as channel:
            stub = mads_pb2_grpc.MonitoringAssignmentDiscoveryServiceStub(channel)
            call = stub.StreamMonitoringAssignments(outgoing(), metadata=metadata)
            await requests.put(first_request(self.name))
            acked = ""
            async for response in call:
                try:
                    assignments = unpack(response)
                except ValueError as exc:
                    log.error("refusing a discovery response: %s", exc)
                    await requests.put(
                        discovery_pb2.DiscoveryRequest(
                            version_info=acked,
                            response_nonce=response.nonce,
                            type_url=TYPE_URL,
                            error_detail=status_pb2.Status(message=str(exc)),
                        )
                    )
                    continue
                self.responses += 1
                log.info(
                    "received monitoring assignments (stream %d): %d", stream_id, len(assignments)
                )
                if self.writer.write(convert(assignments)):
                    log.info("wrote %s", self.writer.path)
                acked = response.version_info
                await requests.put(
                    discovery_pb2.DiscoveryRequest(
                        version_info=acked, response_nonce=response.nonce, type_url=TYPE_URL
                    )
                )
