"""Small network facts several services need."""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Iterable


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
    """A port nothing listens on now: tests and benchmarks hand it to a process they start.

    Chosen below the kernel's ephemeral range, where the OS's own pick (bind to port 0) would
    land: a port from that range can be taken as the source port of any outgoing connection
    before the process it was meant for binds it. Free on `host` and on the wildcard address
    (Envoy binds some listeners to 0.0.0.0), and never handed out twice by one process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
    low = min(_ephemeral_low(), 65536)
    candidates = range(_PRIVATE_LOW, low) if low - _PRIVATE_LOW >= 1000 else range(0)
    for _ in range(200):
        port = random.choice(candidates) if candidates else _kernel_pick(family, host)
        if port not in _handed_out and all(_bindable(family, h, port) for h in (host, wildcard)):
            _handed_out.add(port)
            return port
    raise OSError(f"no free port on {host}")


_PRIVATE_LOW = 20000  # below: well-known-ish service ports (5432, 5672, 6379, 15672, ...)
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _kernel_pick(family: socket.AddressFamily, host: str) -> int:
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bindable(family: socket.AddressFamily, host: str, port: int) -> bool:
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def host_ports(hosts: str, default_port: int) -> list[tuple[str, int]]:
    """A comma-separated list of `host`, `host:port` or `[ipv6]:port` entries (`xdsHost`)."""
    out: list[tuple[str, int]] = []
    for entry in (e.strip() for e in hosts.split(",")):
        if not entry:
            continue
        host, port = entry, default_port
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
        elif entry.count(":") == 1:
            host, _, text = entry.partition(":")
            port = int(text)
        out.append((host, port))
    return out


def xds_host_problem(hosts: str) -> str | None:
    """Why sidecars could not dial `xdsHost`, or None: gRPC takes one name (which may resolve
    to every replica) or a list of IP addresses of one family, not a list of names."""
    try:
        entries = host_ports(hosts, 0)
    except ValueError:
        return f"XdsHost {hosts!r}: a port is not a number"
    if hosts.strip() and not entries:
        return f"XdsHost {hosts!r} names no host"
    if len(entries) < 2:
        return None
    families = set()
    for host, _ in entries:
        try:
            families.add(ipaddress.ip_address(host).version)
        except ValueError:
            return (
                f"XdsHost: {host!r} in a list: give several xDS servers as IP addresses, or as "
                "one DNS name that resolves to all of them"
            )
    return "XdsHost mixes IPv4 and IPv6 addresses" if len(families) > 1 else None


def host_name(authority: str | None) -> str | None:
    """The host of a `Host` header or of an origin's authority, without its port and brackets,
    lower-cased and without a trailing dot (`[::1]:5681` -> `::1`, `LocalHost.:5681` ->
    `localhost`); None when there is none or it is malformed."""
    if not authority:
        return None
    authority = authority.strip()
    if authority.startswith("["):
        host, sep, rest = authority[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
    elif authority.count(":") > 1:
        host = authority  # a bare IPv6 address (not valid in Host, but unambiguous)
    else:
        host = authority.partition(":")[0]
    host = host.rstrip(".").lower()
    return host or None


def is_local_name(host: str | None, names: Iterable[str] = ()) -> bool:
    """True when `host` (as from `host_name`) names this host: `localhost`, a loopback address,
    or one of `names` (compared like `host_name` does); never for a missing host."""
    if not host:
        return False
    if host == "localhost" or is_loopback(host):
        return True
    return any(host == host_name(name) for name in names if name)


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's `net.SplitHostPort`: (host, port), or ValueError with Go's reason. The port starts
    after the last colon; a host with colons must be in brackets (`[::1]:80`), and no other
    colon or bracket may appear (`a:1:2` is "too many colons in address")."""
    i = hostport.rfind(":")
    if i < 0:
        raise ValueError("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        if end + 1 == len(hostport):
            raise ValueError("missing port in address")
        if end + 1 != i:  # ']' not followed by the last colon
            raise ValueError(
                "too many colons in address"
                if hostport[end + 1] == ":"
                else "missing port in address"
            )
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise ValueError("too many colons in address")
    if "[" in hostport[j:]:
        raise ValueError("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise ValueError("unexpected ']' in address")
    return host, hostport[i + 1 :]
