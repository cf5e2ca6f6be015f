"""Small network facts several services need."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(remote_addr: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (an IPv6 zone suffix is ignored);
    False for anything else, including a missing or unparsable address."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # a dual-stack socket's IPv4 peer
    return bool((mapped or address).is_loopback)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now: tests and benchmarks hand it to a process they start."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
