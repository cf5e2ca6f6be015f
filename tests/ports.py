"""Free ports for processes the tests start, so they never clash with each other or with a
control plane already running on this machine."""

from __future__ import annotations

import re
import subprocess

from kuma.netutil import free_port

# Every port `kuma-cp run` listens on, by the env var that moves it.
CP_PORT_VARS = (
    "KUMA_API_SERVER_PORT",
    "KUMA_XDS_SERVER_DIAGNOSTICS_PORT",
    "KUMA_XDS_SERVER_GRPC_PORT",
    "KUMA_SDS_SERVER_GRPC_PORT",
    "KUMA_BOOTSTRAP_SERVER_PORT",
    "KUMA_ADMIN_SERVER_LOCAL_PORT",
    "KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT",
    "KUMA_GUI_SERVER_PORT",
)

__all__ = ["CP_PORT_VARS", "cp_ports", "free_port", "non_loopback_ipv4"]


def cp_ports(host: str = "127.0.0.1") -> dict[str, str]:
    """KUMA_* env vars giving every kuma-cp listener its own free port."""
    return {var: str(free_port(host)) for var in CP_PORT_VARS}


def non_loopback_ipv4() -> str | None:
    """An address of this host other than loopback: a client dialling it is not a loopback
    peer (the kernel uses that address as the source)."""
    try:
        out = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return found[0] if found else None
