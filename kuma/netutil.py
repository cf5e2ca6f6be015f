"""Small network facts several services need."""

from __future__ import annotations

import ipaddress


def is_loopback(remote_addr: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (an IPv6 zone suffix is ignored); False for anything else,
    including a missing or unparsable address."""
    if not remote_addr:
        return False
    try:
        return ipaddress.ip_address(remote_addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
