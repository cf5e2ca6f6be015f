"""Scenarios on the split services: Postgres-shared state, Redis-fed xDS replicas, real Envoys."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import redis
import requests

from tests.integration.ads_watch import AdsWatcher
from tests.integration.topology import API, BIN, BOOTSTRAP, XDS_HOSTS, Topology, wait_until
from tests.ports import free_port


def kumactl(home: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "kumactl"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(home), "PATH": str(BIN)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def use_api(home: Path) -> None:
    kumactl(home, "config", "control-planes", "add", "--name", "split", "--address", API)


def dataplane(name: str, service: str, inbound: str, outbounds: list[tuple[int, str]] = ()) -> str:
    text = (
        f"type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  inbound:\n"
        f"  - interface: {inbound}\n    tags:\n      service: {service}\n"
    )
    if outbounds:
        text += "  outbound:\n" + "".join(
            f"  - interface: :{port}\n    service: {svc}\n" for port, svc in outbounds
        )
    return text


def ads_replica(admin_port: int) -> str | None:
    """The xDS host an Envoy's ADS connection is open to (from its admin /clusters)."""
    text = requests.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=2).text
    for line in text.splitlines():
        parts = line.split("::")
        if parts[0] == "ads_cluster" and parts[2:4] == ["cx_active", "1"]:
            return parts[1].rsplit(":", 1)[0]
    return None


HEALTH_CHECK = """type: HealthCheck
mesh: default
name: backend-checks
sources:
- match: {service: '*'}
destinations:
- match: {service: backend}
conf:
  activeChecks: {interval: 7s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 1}
"""


def test_change_reaches_clients_of_both_replicas(topology: Topology, tmp_path: Path):
    use_api(tmp_path)
    for i in range(len(XDS_HOSTS)):
        kumactl(
            tmp_path,
            "apply",
            "-f",
            "-",
            stdin=dataplane(
                f"web-{i}", "web", f"127.0.0.1:{20000 + i}:8080", [(30000 + i, "backend")]
            ),
        )
    watchers = [AdsWatcher(f"{host}:5678", f"default.web-{i}") for i, host in enumerate(XDS_HOSTS)]
    try:
        for w in watchers:
            wait_until(lambda w=w: "backend" in w.clusters, 15, "first config")
        kumactl(tmp_path, "apply", "-f", "-", stdin=HEALTH_CHECK)
        for w in watchers:
            wait_until(
                lambda w=w: w.clusters["backend"].health_checks,
                5,
                "the health check on the replica's client",
            )
            assert w.clusters["backend"].health_checks[0].interval.seconds == 7
    finally:
        for w in watchers:
            w.close()


def test_walkthrough_and_replica_loss_under_traffic(topology: Topology, tmp_path: Path):
    use_api(tmp_path)
    out_port, second_port = free_port(), free_port()
    kumactl(
        tmp_path,
        "apply",
        "-f",
        "-",
        stdin=dataplane("redis-1", "redis", f"127.0.0.1:{free_port()}:6379"),
    )
    kumactl(
        tmp_path,
        "apply",
        "-f",
        "-",
        stdin=dataplane(
            "backend-1", "backend", f"127.0.0.1:{free_port()}:{free_port()}", [(out_port, "redis")]
        ),
    )
    admin = {}
    for name in ("redis-1", "backend-1"):
        admin[name] = free_port()
        topology.start(
            name,
            [str(BIN / "kuma-dp"), "run"],
            KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL=BOOTSTRAP,
            KUMA_DATAPLANE_MESH="default",
            KUMA_DATAPLANE_NAME=name,
            KUMA_DATAPLANE_ADMIN_PORT=str(admin[name]),
            KUMA_DATAPLANE_RUNTIME_CONFIG_DIR=str(tmp_path / name),
        )
    client = redis.Redis(host="127.0.0.1", port=out_port, socket_timeout=2)
    wait_until(client.ping, 30, "PONG through two Envoys (split services)")

    # Steady traffic while one xDS replica dies: Envoys keep their config and reconnect.
    failures, total, stop = [0], [0], threading.Event()

    def traffic() -> None:
        c = redis.Redis(host="127.0.0.1", port=out_port, socket_timeout=2)
        while not stop.is_set():
            total[0] += 1
            try:
                c.ping()
            except redis.RedisError:
                failures[0] += 1
                c = redis.Redis(host="127.0.0.1", port=out_port, socket_timeout=2)
            time.sleep(0.01)

    # Kill the replica backend-1's Envoy holds its ADS stream to.
    attached = wait_until(lambda: ads_replica(admin["backend-1"]), 10, "backend-1's ADS host")
    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(0.5)
        topology.kill(f"xds-{XDS_HOSTS.index(attached) + 1}")
        time.sleep(3.0)
    finally:
        stop.set()
        worker.join()
    print(f"replica SIGKILL under traffic: {failures[0]} failed of {total[0]} PINGs")
    other = next(h for h in XDS_HOSTS if h != attached)
    wait_until(lambda: ads_replica(admin["backend-1"]) == other, 15, "reconnect to the other")
    assert failures[0] == 0

    # The surviving replica serves changes: a new outbound starts to work.
    kumactl(
        tmp_path,
        "apply",
        "-f",
        "-",
        stdin=dataplane(
            "backend-1", "backend", "127.0.0.1:1:1", [(out_port, "redis"), (second_port, "redis")]
        ).replace("127.0.0.1:1:1", f"127.0.0.1:{free_port()}:{free_port()}"),
    )
    second = redis.Redis(host="127.0.0.1", port=second_port, socket_timeout=2)
    wait_until(second.ping, 20, "a change after the replica loss reaches the Envoy")
