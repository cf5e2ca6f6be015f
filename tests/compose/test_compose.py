"""`docker compose up`, for real: the demo mesh comes up with dataplane tokens on, is driven
with kumactl from the host, survives the loss of an xDS replica and a `down`/`up`.

The tests run in order on one stack (bringing it up costs minutes): each starts from the state
the previous one left. Deselected by default (`./scripts/test` passes `-m "not compose"`); run
them with `./scripts/test -m compose tests/compose` once Docker is there (`.ci/run` does both).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.compose.stack import COMPOSE_FILE, Stack, docker
from tests.waiting import wait_until

# One timeout for the module: its first test's setup builds the images and brings the stack up.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

PERMISSION = "compose-allow-all"  # every service may call every service
MTLS_ON = "type: Mesh\nname: default\nmtls:\n  enabled: true\n  ca:\n    builtin: {}\n"
ALLOW_ALL = (
    f"type: TrafficPermission\nmesh: default\nname: {PERMISSION}\n"
    "sources:\n- match:\n    service: '*'\ndestinations:\n- match:\n    service: '*'\n"
)
SIDECARS = ("redis-dp", "backend-dp")  # of redis-1 and backend-1
CONFIG_S = 60  # a change to reach Envoy, with room for a slow machine
READY_S = 240  # the stack's first PONG after `up -d` returned


class Kumactl:
    """The host's kumactl, with a config file of its own naming the stack's published API."""

    def __init__(self, binary: str, config: Path, api_url: str, token: str | None):
        self.binary, self.config = binary, config
        config.touch()
        add = ["config", "control-planes", "add", "--name", "compose", "--address", api_url]
        self(*add, *(["--auth-token", token] if token else []), "--overwrite")

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [self.binary, "--config-file", str(self.config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kumactl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout + (done.stderr if not check else "")

    def apply(self, yaml_text: str) -> None:
        self("apply", "-f", "-", stdin=yaml_text)

    def statuses(self) -> dict[str, str]:
        """Dataplane name -> Online/Offline, from `kumactl inspect dataplanes`."""
        lines = self("inspect", "dataplanes").splitlines()
        header = lines[0].split()
        name_at, status_at = header.index("NAME"), header.index("STATUS")
        return {row.split()[name_at]: row.split()[status_at] for row in lines[1:] if row.strip()}


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    """What the README tells the host's user to run."""
    return stack.exec("api", "cat", "/run/kuma/admin/token").strip()


@pytest.fixture(scope="module")
def control_plane_ca(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CA the sidecars verify the control plane with, as a file on the host."""
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(stack.exec("redis-dp", "cat", "/run/kuma/control-plane-ca/ca.crt"))
    return str(path)


def bootstrap(stack: Stack, ca: str, body: dict[str, str]) -> requests.Response:
    return requests.post(stack.bootstrap_url + "/bootstrap", json=body, timeout=10, verify=ca)


@pytest.fixture(scope="module")
def kumactl(
    stack: Stack, kumactl_bin: str, admin_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Kumactl:
    home = tmp_path_factory.mktemp("kumactl")
    return Kumactl(kumactl_bin, home / "config", stack.api_url, admin_token)


def pong(stack: Stack) -> bool:
    return stack.ping() == "PONG"


def refused(stack: Stack) -> bool:
    """redis-cli's own error: the connection was made and then closed by the mesh."""
    return stack.ping().startswith("Error:")


def all_online(kumactl: Kumactl) -> dict[str, str]:
    statuses = kumactl.statuses()
    return statuses if statuses == {"redis-1": "Online", "backend-1": "Online"} else {}


def config_dump(stack: Stack, sidecar: str) -> dict[str, Any]:
    return json.loads(stack.envoy_admin(sidecar, "/config_dump"))


def permission_in(dump: dict[str, Any]) -> bool:
    """Whether the TrafficPermission is among the RBAC policies of the Envoy's listeners."""
    return f'"{PERMISSION}"' in json.dumps(dump)


def ads_peer(stack: Stack, sidecar: str) -> str | None:
    """The xDS replica address the sidecar's Envoy holds its ADS stream to, from the kernel's
    table of the sidecar's network namespace (Envoy's gRPC client has no cluster to ask)."""
    for line in stack.exec(sidecar, "cat", "/proc/net/tcp").splitlines()[1:]:
        _, _, remote, state, *_ = line.split()
        address, port = remote.split(":")
        if state == "01" and int(port, 16) == 5678:  # ESTABLISHED
            return str(ipaddress.IPv4Address(bytes.fromhex(address)[::-1]))
    return None


def mesh_ca(stack: Stack) -> str:
    """The mesh CA certificate the redis sidecar's Envoy was given."""
    dump = config_dump(stack, "redis-dp")
    for section in dump["configs"]:
        for secret in section.get("dynamic_active_secrets", []):
            if secret["name"] == "mesh_ca":
                context = secret["secret"]["validation_context"]["trusted_ca"]
                return str(context.get("inline_bytes") or context.get("inline_string"))
    raise AssertionError("the sidecar holds no mesh_ca secret")


# --- up ---------------------------------------------------------------------------------------


def test_up_answers_ping_through_two_envoys(stack: Stack):
    wait_until(lambda: pong(stack), READY_S, "PONG from redis through both sidecars")
    # Only the backend's Envoy listens on :10000, and it reaches Redis through the redis-1
    # inbound (the workload's address, port 9000) of the other Envoy.
    redis_ip = stack.mesh_ip(stack.containers("redis-workload")[0])
    stats = stack.envoy_admin("redis-dp", "/stats?filter=downstream_cx_total")
    inbound = re.search(rf"listener\.{re.escape(redis_ip)}_9000\.downstream_cx_total: (\d+)", stats)
    assert inbound and int(inbound[1]) > 0, stats


def test_credentials_are_on_volumes_for_uid_5678(stack: Stack):
    listing = stack.exec("injector", "ls", "-ln", "/run/kuma/injector-tls")
    assert re.search(r"^-r-------- +1 5678 +5678 .* tls\.key$", listing, re.M), listing
    # the injector (uid 5678) serves TLS with that key: healthy (nothing else waits for it)
    wait_until(lambda: _healthy(stack, "injector", 1), READY_S, "a healthy injector")
    assert stack.exec("redis-dp", "ls", "-ln", "/run/kuma/dataplane").count(" 5678 ") == 1
    # each sidecar holds only its own token
    assert "dataplane-backend" not in stack.exec("redis-dp", "ls", "/run/kuma")


def test_dataplanes_are_online_and_kumactl_on_the_host_works(stack: Stack, kumactl: Kumactl):
    wait_until(lambda: all_online(kumactl), CONFIG_S, "both dataplanes Online")
    assert "default" in kumactl("get", "meshes")
    names = {dp["name"] for dp in json.loads(kumactl("get", "dataplanes", "-o", "json"))["items"]}
    assert names == {"redis-1", "backend-1"}


def test_the_gui_shows_the_mesh_and_serves_the_api_read_only(stack: Stack):
    """The `gui` service (kuma-gui) reads the `api` service: the overview counts both sidecars
    online (tests/gui drive the pages in a browser; this is the image and the network)."""
    wait_until(
        lambda: 'data-count="online">2<' in requests.get(stack.gui_url + "/", timeout=10).text,
        CONFIG_S,
        "the GUI's overview with both dataplanes online",
    )
    put = requests.put(stack.gui_url + "/api/meshes/default", json={"type": "Mesh"}, timeout=10)
    assert put.status_code == 405


def test_tokens_and_tls_are_on(
    stack: Stack, kumactl_bin: str, tmp_path: Path, control_plane_ca: str
):
    """From the host the API sees no loopback caller: a write without the admin token is
    refused, and so is a bootstrap without a dataplane token, or over plain HTTP."""
    anonymous = Kumactl(kumactl_bin, tmp_path / "config", stack.api_url, None)
    out = anonymous("apply", "-f", "-", stdin=ALLOW_ALL, check=False)
    assert "Unauthorized" in out, out
    body = {"mesh": "default", "name": "redis-1"}
    assert bootstrap(stack, control_plane_ca, body).status_code == 401
    plain = stack.bootstrap_url.replace("https://", "http://") + "/bootstrap"
    assert requests.post(plain, json=body, timeout=10).status_code == 403


# --- mTLS ----------------------------------------------------------------------------------


def test_mtls_denies_without_a_permission_and_allows_with_one(stack: Stack, kumactl: Kumactl):
    kumactl.apply(MTLS_ON)
    wait_until(lambda: refused(stack), CONFIG_S, "PING refused under mTLS without a permission")
    kumactl.apply(ALLOW_ALL)
    wait_until(lambda: pong(stack), CONFIG_S, "PONG once the TrafficPermission is applied")
    for sidecar in SIDECARS:
        wait_until(
            lambda s=sidecar: permission_in(config_dump(stack, s)), CONFIG_S, f"{sidecar} RBAC"
        )


# --- an xDS replica lost under traffic --------------------------------------------------------


def test_losing_an_xds_replica_fails_no_ping_and_changes_still_arrive(
    stack: Stack, kumactl: Kumactl
):
    stack.up("--no-deps", "--scale", "xds=3", "xds", timeout=300)
    replicas = wait_until(lambda: _healthy(stack, "xds", 3), 120, "3 healthy xDS replicas")
    by_ip = {stack.mesh_ip(c): c for c in replicas}
    held = wait_until(lambda: ads_peer(stack, "redis-dp"), CONFIG_S, "redis-dp's ADS connection")
    victim = by_ip[held]

    pings: list[str] = []
    stop = threading.Event()

    def ping_loop() -> None:
        while not stop.is_set():
            pings.append(stack.ping())

    loop = threading.Thread(target=ping_loop, daemon=True)
    loop.start()
    try:
        wait_until(lambda: len(pings) >= 3, 60, "the PING loop to start")
        docker("kill", victim)
        # both sidecars hold a stream to a live replica again
        for sidecar in SIDECARS:
            wait_until(
                lambda s=sidecar: ads_peer(stack, s) not in (None, held),
                CONFIG_S,
                f"{sidecar} reconnected to a live replica",
            )
        count = len(pings)
        wait_until(lambda: len(pings) >= count + 5, 60, "more PINGs after the move")
    finally:
        stop.set()
        loop.join(timeout=60)
    failed = [p for p in pings if p != "PONG"]
    assert not failed, f"{len(failed)} of {len(pings)} PINGs failed: {failed[:5]}"

    # A change reaches both sidecars through the live replicas: they did not just keep
    # their old configuration.
    kumactl("delete", "traffic-permission", PERMISSION)
    for sidecar in SIDECARS:
        wait_until(
            lambda s=sidecar: not permission_in(config_dump(stack, s)),
            CONFIG_S,
            f"the deleted permission gone from {sidecar}",
        )
    wait_until(lambda: refused(stack), CONFIG_S, "PING refused without the permission")
    wait_until(lambda: all_online(kumactl), CONFIG_S, "both dataplanes Online again")
    kumactl.apply(ALLOW_ALL)
    wait_until(lambda: pong(stack), CONFIG_S, "PONG with the permission back")


def _healthy(stack: Stack, service: str, count: int) -> list[str]:
    ids = stack.containers(service)
    states = [stack.inspect(c)["State"].get("Health", {}).get("Status") for c in ids]
    return ids if len(ids) == count and all(s == "healthy" for s in states) else []


# --- down, then up ----------------------------------------------------------------------------


def _resources(kumactl: Kumactl) -> dict[str, Any]:
    """Every resource by kind and name, without timestamps, and the dataplanes without their
    addresses (recreated containers may get other ones)."""
    out: dict[str, Any] = {}
    for kind in ("meshes", "dataplanes", "traffic-permissions", "traffic-routes", "traffic-logs"):
        items = json.loads(kumactl("get", kind, "-o", "json"))["items"]
        for item in items:
            for stamp in ("creationTime", "modificationTime"):
                item.pop(stamp, None)
            if kind == "dataplanes":
                for inbound in item["networking"].get("inbound", []):
                    inbound["interface"] = inbound["interface"].split(":", 1)[1]
        out[kind] = sorted(items, key=lambda i: (i.get("mesh", ""), i["name"]))
    return out


def test_down_then_up_keeps_resources_ca_and_tokens(
    stack: Stack, kumactl: Kumactl, admin_token: str, control_plane_ca: str
):
    before = _resources(kumactl)
    ca = mesh_ca(stack)
    old_token = stack.exec("redis-dp", "cat", "/run/kuma/dataplane/token")
    volumes = set(stack.leftovers()["volumes"])
    declared = yaml.safe_load(COMPOSE_FILE.read_text())["volumes"]
    assert volumes == {f"{stack.project}_{name}" for name in declared}

    stack.down(timeout=600)
    assert not stack.containers(every=True)
    stack.up(timeout=600)

    wait_until(lambda: pong(stack), READY_S, "PONG after down and up")
    assert set(stack.leftovers()["volumes"]) == volumes
    assert stack.exec("api", "cat", "/run/kuma/admin/token").strip() == admin_token
    assert _resources(kumactl) == before  # kumactl still holds the old admin token: it works
    assert mesh_ca(stack) == ca
    # the token signing key survived: a token issued before `down` is still good
    body = {"mesh": "default", "name": "redis-1", "dataplaneToken": old_token}
    answer = bootstrap(stack, control_plane_ca, body)  # the same CA: `certs` kept its pair
    assert answer.status_code == 200, answer.text
    wait_until(lambda: all_online(kumactl), CONFIG_S, "both dataplanes Online after up")
