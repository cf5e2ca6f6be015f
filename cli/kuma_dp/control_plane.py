"""kuma-dp's two conversations with the control plane (spec §10.2 steps 2 and 6): where the
bootstrap server is (`GET /catalog`), and Envoy's bootstrap (`POST /bootstrap`).

An https URL is verified against the CA file kuma-dp was given (`--ca-cert-file`), host name
included. Without one the connection is still encrypted, but anyone in the middle could answer:
kuma-dp says so once, in a warning. http URLs are plain HTTP (the bootstrap server answers plain
HTTP only to callers on its own host).
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cli.kuma_dp.errors import DpError

log = logging.getLogger("kuma-dp")
HTTP_TIMEOUT = 10.0
TOKEN_REQUIRED = (
    "Kuma CP is configured with Dataplane Token Server therefore the Dataplane Token is "
    "required. Generate token using 'kumactl generate dataplane-token > /path/file' and provide "
    "it via --dataplane-token-file=/path/file argument to Kuma DP"
)


@dataclass(frozen=True, slots=True)
class Discovery:
    bootstrap_url: str
    token_required: bool


@functools.cache
def tls_context(ca_file: str) -> ssl.SSLContext:
    """The client context for https URLs: verifying against `ca_file`, or (no file) encrypting
    without verifying, with a warning the first time."""
    if ca_file:
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise DpError(f"could not load the CA certificate file {ca_file}: {exc}") from None
    log.warning(
        "no CA certificate given (--ca-cert-file, KUMA_CONTROL_PLANE_CA_CERT_FILE): the "
        "connection to the control plane is encrypted but its certificate is NOT verified"
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _tls_failure(url: str, ca_file: str, exc: ssl.SSLError) -> DpError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DpError(
            f"certificate verify failed for the control plane at {url} with the CA file "
            f"{ca_file}: {exc.verify_message}"
        )
    return DpError(
        f"TLS with the control plane at {url} failed ({exc.reason or exc}): does it serve "
        "https on that port?"
    )


def _call(url: str, ca_file: str, body: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request; DpError when the server cannot be reached at all."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    context = tls_context(ca_file) if urlsplit(url).scheme == "https" else None
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            raise _tls_failure(url, ca_file, reason) from None
        raise DpError(f"could not reach the control plane at {url}: {reason}") from None


def discover(cp_address: str, ca_file: str = "") -> Discovery:
    """The bootstrap URL from the API's catalog. A server without `/catalog` is taken to be the
    bootstrap server itself: the seed's 0.1 form, where `--cp-address` named it directly."""
    base = cp_address.rstrip("/")
    status, body = _call(f"{base}/catalog", ca_file)
    if status == 404:
        return Discovery(bootstrap_url=base, token_required=False)
    if status != 200:
        raise DpError(f"{base}/catalog answered {status}: {_details(body)}")
    try:
        apis = json.loads(body)["apis"]
        url = apis["bootstrap"]["url"]
        token_api = apis.get("dataplaneToken") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DpError(f"{base}/catalog answered {status} without a Kuma catalog") from None
    return Discovery(bootstrap_url=url.rstrip("/"), token_required=bool(token_api.get("localUrl")))


def read_token(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise DpError(f"could not read the dataplane token file {path}: {exc.strerror}") from None
    if not token:
        raise DpError(f"token under file {path} is empty")
    return token


def _details(body: bytes) -> str:
    try:
        return str(json.loads(body)["details"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip()


def fetch_bootstrap(url: str, request: dict[str, Any], ca_file: str = "") -> str:
    status, body = _call(f"{url}/bootstrap", ca_file, json.dumps(request).encode())
    if status == 200:
        return body.decode()
    if status == 404:
        raise DpError(f"status: 404. Did you first apply a Dataplane resource? ({_details(body)})")
    if status == 401:
        raise DpError(f"the control plane rejected the dataplane token: {_details(body)}")
    raise DpError(f"unexpected status code: {status} ({_details(body)})")
