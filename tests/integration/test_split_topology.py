"""Scenarios on the split services: Postgres-shared state, Redis-fed xDS replicas, real Envoys."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
import redis
from envoy.api.v2 import discovery_pb2

from services.xds.mads.assignments import TYPE_URL
from services.xds.mads.proto import mads_pb2, mads_pb2_grpc
from tests.integration.ads_watch import AdsWatcher
from tests.integration.topology import (
    API,
    BIN,
    BOOTSTRAP,
    HEARTBEAT_TIMEOUT_S,
    SWEEP_INTERVAL_S,
    XDS_HOSTS,
    Topology,
    wait_until,
)
from tests.ports import free_port

pytestmark = pytest.mark.envoy


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


def apply_yaml(home: Path, text: str) -> str:
    """`kumactl apply -f -` with `text` on stdin."""
    return kumactl(home, "apply", "-f", "-", stdin=text)


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
    """The xDS host an Envoy's ADS connection is open to: Envoy's gRPC client keeps no cluster
    of it, so ask the kernel (`ss`) which 5678 peer the process listening on `admin_port` has."""

    def ss(*args: str) -> str:
        return subprocess.run(["ss", "-Htnp", *args], capture_output=True, text=True).stdout

    pid = re.search(r"pid=(\d+)", ss("-l", f"sport = :{admin_port}"))
    if pid is None:
        return None
    for line in ss("state", "established", "dport = :5678").splitlines():
        if f"pid={pid[1]}," in line:  # gRPC dials from a dual-stack socket: [::ffff:a.b.c.d]
            return line.split()[-2].rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
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
        apply_yaml(
            tmp_path,
            dataplane(f"web-{i}", "web", f"127.0.0.1:{20000 + i}:8080", [(30000 + i, "backend")]),
        )
    watchers = [
        AdsWatcher(f"{host}:5678", f"default.web-{i}", topology.ca_pem)
        for i, host in enumerate(XDS_HOSTS)
    ]
    try:
        for w in watchers:
            wait_until(lambda w=w: "backend" in w.clusters, 15, "first config")
        apply_yaml(tmp_path, HEALTH_CHECK)
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


def monitoring_assignments(host: str, ca_pem: bytes) -> list[str]:
    """The names MADS on `host`:5676 lists (one Fetch over TLS, verified with the shared
    certificate; this host's peer address is loopback, so same-host trust lets it read)."""
    credentials = grpc.ssl_channel_credentials(ca_pem)
    with grpc.secure_channel(f"{host}:5676", credentials) as channel:
        stub = mads_pb2_grpc.MonitoringAssignmentDiscoveryServiceStub(channel)
        answer = stub.FetchMonitoringAssignments(
            discovery_pb2.DiscoveryRequest(type_url=TYPE_URL), timeout=15
        )
    names = []
    for resource in answer.resources:
        assignment = mads_pb2.MonitoringAssignment()
        resource.Unpack(assignment)
        names.append(assignment.name)
    return names


def test_every_replica_serves_the_monitoring_assignments(topology: Topology, tmp_path: Path):
    """MADS (issue 19 item 2) on each kuma-xds replica's own address: a Dataplane written through
    the API, in a Mesh with Prometheus, is listed by both replicas (Postgres + Redis), and once
    deleted by neither."""
    use_api(tmp_path)
    apply_yaml(tmp_path, "type: Mesh\nname: default\nmetrics:\n  prometheus: {}\n")
    apply_yaml(tmp_path, dataplane("web-0", "web", "127.0.0.1:20000:8080"))
    for host in XDS_HOSTS:
        wait_until(
            lambda h=host: (
                monitoring_assignments(h, topology.ca_pem) == ["/meshes/default/dataplanes/web-0"]
            ),
            15,
            f"the Dataplane in {host}'s monitoring assignments",
        )
    kumactl(tmp_path, "delete", "dataplane", "web-0")
    for host in XDS_HOSTS:
        wait_until(
            lambda h=host: monitoring_assignments(h, topology.ca_pem) == [],
            15,
            f"the Dataplane gone from {host}'s monitoring assignments",
        )


def test_walkthrough_and_replica_loss_under_traffic(topology: Topology, tmp_path: Path):
    use_api(tmp_path)
    out_port, second_port = free_port(), free_port()
    apply_yaml(
        tmp_path,
        dataplane("redis-1", "redis", f"127.0.0.1:{free_port()}:6379"),
    )
    apply_yaml(
        tmp_path,
        dataplane(
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
    apply_yaml(
        tmp_path,
        dataplane(
            "backend-1", "backend", "127.0.0.1:1:1", [(out_port, "redis"), (second_port, "redis")]
        ).replace("127.0.0.1:1:1", f"127.0.0.1:{free_port()}:{free_port()}"),
    )
    second = redis.Redis(host="127.0.0.1", port=second_port, socket_timeout=2)
    wait_until(second.ping, 20, "a change after the replica loss reaches the Envoy")


def inspect_status(home: Path, name: str) -> str:
    """The STATUS column of `kumactl inspect dataplanes` for Dataplane `name`."""
    lines = kumactl(home, "inspect", "dataplanes").splitlines()
    header = lines[0].split()
    for line in lines[1:]:
        cells = line.split()
        if cells[header.index("NAME")] == name:
            return cells[header.index("STATUS")]
    raise AssertionError(f"{name} not listed:\n" + "\n".join(lines))


def test_dataplanes_of_a_dead_replica_go_offline_then_online_elsewhere(
    topology: Topology, tmp_path: Path
):
    use_api(tmp_path)
    apply_yaml(tmp_path, dataplane("web-9", "web", "127.0.0.1:9:9"))
    doomed, survivor = XDS_HOSTS
    # A client that does not reconnect by itself (an Envoy would, at once, to the survivor).
    watcher = AdsWatcher(f"{doomed}:5678", "default.web-9", topology.ca_pem)
    try:
        wait_until(lambda: inspect_status(tmp_path, "web-9") == "Online", 20, "web-9 Online")
        killed = time.monotonic()
        topology.kill("xds-1")
        bound = max(HEARTBEAT_TIMEOUT_S, SWEEP_INTERVAL_S) + SWEEP_INTERVAL_S
        wait_until(
            lambda: inspect_status(tmp_path, "web-9") == "Offline", bound + 10, "web-9 Offline"
        )
        offline_after = time.monotonic() - killed
        print(f"Offline {offline_after:.1f} s after the replica's SIGKILL (bound {bound} s)")
        assert offline_after <= bound + 1.0  # + the polling of kumactl
    finally:
        watcher.close()
    again = AdsWatcher(f"{survivor}:5678", "default.web-9", topology.ca_pem)
    try:
        wait_until(lambda: inspect_status(tmp_path, "web-9") == "Online", 20, "web-9 back Online")
    finally:
        again.close()
