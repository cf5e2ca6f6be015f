"""Another host on one machine: a network namespace joined to this one by a veth pair on a private
/30 of 10.200.0.0-10.254.255.255, both made for one test and removed afterwards (also when the
test or the set-up fails). Traffic goes only to loopback and to the namespace made here.

    with network_namespace() as ns:
        ns.host_ip, ns.ns_ip           # this side's address, the namespace's
        ns.run(["ip", "-br", "addr"])  # `ip netns exec NAME ...` to completion
        ns.popen([...], stdout=...)    # ... or in the background

Names carry the creating process's id and a random suffix (the namespace `kuma-test-PID-XXXXXX`,
its links `knXXXXXXh` / `knXXXXXXn`, at most 15 characters), so runs at the same time never
clash, and what a killed run left behind is found and removed by the next one.

Needs root and `ip` (iproute2): the test is skipped with the reason otherwise."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.ports import non_loopback_ipv4

PREFIX = "kuma-test-"
_NAME = re.compile(rf"^{PREFIX}(?P<pid>\d+)-(?P<suffix>[0-9a-f]{{6}})$")


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (this run is not root)"
    if shutil.which("ip") is None:
        return "network namespaces need `ip` (iproute2), which is not installed"
    return None


def require_netns() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this host has an address or a route in (the default route aside)."""
    text = _ip("-4", "-o", "addr").stdout + _ip("-4", "route", "show", "table", "all").stdout
    found = re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", text)
    networks = [ipaddress.ip_network(n, strict=False) for n in found]
    return [n for n in networks if n.prefixlen > 0]


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    for _ in range(100):
        second, third = random.randint(200, 254), random.randint(0, 255)
        fourth = random.randrange(0, 256, 4)
        subnet = ipaddress.ip_network(f"10.{second}.{third}.{fourth}/30")
        if not any(subnet.overlaps(n) for n in used):
            return subnet
    raise RuntimeError("no free /30 in 10.200.0.0-10.254.255.255")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_members(name: str) -> None:
    """SIGKILL every process still running in namespace `name`."""
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _remove(name: str, host_if: str) -> None:
    _kill_members(name)
    _ip("link", "del", host_if, check=False)  # takes its peer in the namespace with it
    _ip("netns", "del", name, check=False)


def remove_stale() -> None:
    """Remove the namespaces (and links) of test runs whose process is gone."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        found = _NAME.match(line.split()[0]) if line.strip() else None
        if found and not _pid_alive(int(found["pid"])):
            _remove(found.group(0), f"kn{found['suffix']}h")


@dataclass(frozen=True)
class Netns:
    name: str
    host_if: str
    ns_if: str
    host_ip: str  # this (the host's) side of the veth pair
    ns_ip: str  # the namespace's side

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, argv: Sequence[str], *, timeout: float = 30, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """`argv` in the namespace, to completion (text output captured unless told)."""
        kw.setdefault("capture_output", True)
        return subprocess.run(self.argv(argv), text=True, timeout=timeout, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """`argv` in the namespace, in the background. Whatever still runs there when the
        namespace is removed is killed."""
        return subprocess.Popen(self.argv(argv), **kw)


@contextlib.contextmanager
def network_namespace(settle: float = 5.0) -> Iterator[Netns]:
    """A namespace with loopback up and a veth pair on a fresh /30; removed on exit. `settle`:
    how long to wait for the link to come up."""
    require_netns()
    remove_stale()
    suffix = os.urandom(3).hex()
    name = f"{PREFIX}{os.getpid()}-{suffix}"
    host_if, ns_if = f"kn{suffix}h", f"kn{suffix}n"
    subnet = _free_subnet()
    host_ip, ns_ip = (str(a) for a in subnet.hosts())
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        ns = Netns(name, host_if, ns_if, host_ip, ns_ip)
        _wait_up(ns, settle)
        yield ns
    finally:
        _remove(name, host_if)


def _wait_up(ns: Netns, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _ip("-n", ns.name, "-br", "link", "show", ns.ns_if, check=False).stdout.split()
        if len(state) > 1 and state[1] in ("UP", "UNKNOWN"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the veth pair {ns.host_if}/{ns.ns_if} did not come up in {timeout} s")


@pytest.fixture()
def netns() -> Iterator[Netns]:
    """A namespace of one test (import this fixture into a test module or conftest)."""
    with network_namespace() as ns:
        yield ns


@contextlib.contextmanager
def non_loopback_address() -> Iterator[str]:
    """An address of this host that is not loopback: dialled from here, the server sees a peer
    that is not on loopback. The host's own global address, else the host side of a veth pair
    made for the caller (a host whose only interface is loopback still runs the test; only
    one where namespaces cannot be made skips it, with that reason)."""
    address = non_loopback_ipv4()
    if address is not None:
        yield address
        return
    with network_namespace() as ns:
        yield ns.host_ip
