"""The store contract (kuma/store/base.py), run on every store: MemoryStore and PostgresStore."""

from __future__ import annotations

import random
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from kuma.errors import AlreadyExistsError, ConflictError, NotFoundError
from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.store import ResourceStore
from kuma.store.base import stored_key

SECRET_BYTES = b"\x00\x01\x02-----BEGIN RSA PRIVATE KEY-----\n\xff\xfe\x00\x7f" + bytes(range(256))

# A realistic protobuf-JSON spec of every registered type.
SPECS: dict[str, Any] = {
    "Mesh": {
        "mtls": {"enabled": True, "ca": {"builtin": {}}},
        "tracing": {"zipkin": {"address": "zipkin.local:9411"}},
        "logging": {
            "defaultBackend": "file",
            "backends": [
                {
                    "name": "file",
                    "format": "%START_TIME% %KUMA_SOURCE_SERVICE%",
                    "file": {"path": "/var/log/access.log"},
                },
                {"name": "logstash", "tcp": {"address": "logstash:5000"}},
            ],
        },
        "metrics": {"prometheus": {"port": 5670, "path": "/metrics"}},
    },
    "Dataplane": {
        "networking": {
            "inbound": [
                {"interface": "10.0.0.1:10001:8080", "tags": {"service": "web", "version": "v1"}},
                {"interface": "10.0.0.1:10002:9090", "tags": {"service": "web-admin"}},
            ],
            "outbound": [
                {"interface": ":33033", "service": "backend", "servicePort": 8080},
                {"interface": "127.0.0.1:5432", "service": "postgres"},
            ],
            "transparentProxying": {"redirectPort": 15001},
        }
    },
    "DataplaneInsight": {
        "subscriptions": [
            {
                "id": "0f5e3b6c",
                "controlPlaneInstanceId": "cp-1",
                "connectTime": "2020-01-02T03:04:05.123456Z",
                "status": {
                    "lastUpdateTime": "2020-01-02T03:05:00Z",
                    "total": {
                        "responsesSent": "12",
                        "responsesAcknowledged": "11",
                        "responsesRejected": "1",
                    },
                    "cds": {"responsesSent": "3", "responsesAcknowledged": "3"},
                },
            }
        ]
    },
    "HealthCheck": {
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "backend"}}],
        "conf": {
            "activeChecks": {
                "interval": "10s",
                "timeout": "0.250s",
                "unhealthyThreshold": 3,
                "healthyThreshold": 1,
            },
            "passiveChecks": {"unhealthyThreshold": 5, "penaltyInterval": "30s"},
        },
    },
    "ProxyTemplate": {
        "selectors": [{"match": {"service": "web"}}],
        "conf": {
            "imports": ["default-proxy"],
            "resources": [
                {
                    "name": "raw-cluster",
                    "version": "v1",
                    "resource": "'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster\n"
                    "name: localhost:8443\nconnectTimeout: 5s\ntype: STATIC\n",
                }
            ],
        },
    },
    "TrafficPermission": {
        "sources": [{"match": {"service": "web"}}],
        "destinations": [{"match": {"service": "backend", "version": "*"}}],
    },
    "TrafficLog": {
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "*"}}],
        "conf": {"backend": "logstash"},
    },
    "TrafficRoute": {
        "sources": [{"match": {"service": "web"}}],
        "destinations": [{"match": {"service": "backend"}}],
        "conf": [
            {"weight": 90, "destination": {"service": "backend", "version": "v1"}},
            {"weight": 10, "destination": {"service": "backend", "version": "v2"}},
        ],
    },
    "Secret": registry.encode_spec(registry.decode_spec("Secret", SECRET_BYTES)),
}
TYPES = [t.name for t in registry.TYPES]


def make(type_: str, mesh: str, name: str, spec: Any = None, version: int = 0) -> Resource:
    if type_ == registry.MESH:
        mesh = name
    data = SPECS[type_] if spec is None else spec
    return Resource(type_, mesh, name, registry.decode_spec(type_, data), version)


def wire(resource: Resource) -> Any:
    return registry.encode_spec(resource.spec)


def test_every_registered_type_has_a_sample() -> None:
    assert set(SPECS) == set(TYPES)


# --- create / get ---------------------------------------------------------------------------


@pytest.mark.parametrize("type_", TYPES)
def test_create_then_get_round_trips_every_type(store: ResourceStore, type_: str) -> None:
    before = store.revision()
    created = store.create(make(type_, "demo", "first"))
    assert created.version == 1
    assert created.revision == store.revision() > before
    assert created.creation_time is not None and created.creation_time.tzinfo is not None
    assert created.creation_time.utcoffset() == timedelta(0)
    assert created.modification_time == created.creation_time

    got = store.get(type_, created.mesh, created.name)
    assert got == created
    assert wire(got) == SPECS[type_]
    assert (got.revision, got.creation_time, got.modification_time) == (
        created.revision,
        created.creation_time,
        created.modification_time,
    )


def test_secret_bytes_survive_exactly(store: ResourceStore) -> None:
    store.create(make("Secret", "demo", "ca-key"))
    assert store.get("Secret", "demo", "ca-key").spec.data == SECRET_BYTES
    assert store.list("Secret", "demo").items[0].spec.data == SECRET_BYTES


def test_create_existing_raises_already_exists_and_changes_nothing(store: ResourceStore) -> None:
    first = store.create(make("TrafficRoute", "demo", "route"))
    revision = store.revision()
    with pytest.raises(AlreadyExistsError):
        store.create(make("TrafficRoute", "demo", "route", {"conf": []}))
    assert store.revision() == revision
    got = store.get("TrafficRoute", "demo", "route")
    assert (got.version, wire(got)) == (1, wire(first))
    # Same name, other type or other mesh: a different key.
    store.create(make("TrafficLog", "demo", "route"))
    store.create(make("TrafficRoute", "other", "route"))


def test_get_missing_raises_not_found(store: ResourceStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("Dataplane", "demo", "nope")


# --- update ---------------------------------------------------------------------------------


def test_update_with_current_version_bumps_version_and_revision(store: ResourceStore) -> None:
    created = store.create(make("Dataplane", "demo", "dp-1"))
    new_spec = {
        "networking": {
            "inbound": [
                {"interface": "10.0.0.2:10001:8080", "tags": {"service": "web", "version": "v2"}}
            ]
        }
    }
    updated = store.update(make("Dataplane", "demo", "dp-1", new_spec, version=1))
    assert updated.version == 2
    assert updated.revision == store.revision() > created.revision
    assert updated.creation_time == created.creation_time
    assert updated.modification_time is not None and created.modification_time is not None
    assert updated.modification_time >= created.modification_time

    got = store.get("Dataplane", "demo", "dp-1")
    assert wire(got) == new_spec
    assert (got.version, got.revision, got.creation_time) == (
        2,
        updated.revision,
        created.creation_time,
    )
    assert store.update(make("Dataplane", "demo", "dp-1", version=2)).version == 3


def test_update_with_stale_version_conflicts_and_changes_nothing(store: ResourceStore) -> None:
    store.create(make("HealthCheck", "demo", "hc"))
    current = store.update(make("HealthCheck", "demo", "hc", version=1))
    revision = store.revision()
    for stale in (1, 0, 3):
        with pytest.raises(ConflictError):
            store.update(make("HealthCheck", "demo", "hc", {}, version=stale))
    got = store.get("HealthCheck", "demo", "hc")
    assert (got.version, got.revision, wire(got)) == (2, current.revision, SPECS["HealthCheck"])
    assert store.revision() == revision


def test_update_and_delete_of_missing_raise_not_found(store: ResourceStore) -> None:
    revision = store.revision()
    with pytest.raises(NotFoundError):
        store.update(make("TrafficPermission", "demo", "nope", version=1))
    with pytest.raises(NotFoundError):
        store.delete("TrafficPermission", "demo", "nope")
    with pytest.raises(NotFoundError):
        store.delete("Mesh", "nope", "nope")
    assert store.revision() == revision


def test_delete_removes_and_returns_the_revision(store: ResourceStore) -> None:
    store.create(make("TrafficLog", "demo", "log"))
    store.create(make("TrafficLog", "demo", "log-2"))
    revision = store.delete("TrafficLog", "demo", "log")
    assert revision == store.revision()
    with pytest.raises(NotFoundError):
        store.get("TrafficLog", "demo", "log")
    assert [r.name for r in store.list("TrafficLog").items] == ["log-2"]
    # Recreating starts over at version 1.
    assert store.create(make("TrafficLog", "demo", "log")).version == 1


# --- list -----------------------------------------------------------------------------------

NAMES = ["web-2", "web_1", "web1", "a", "web-10", "b0", "web", "0zero"]


def _fill(store: ResourceStore, meshes: list[str]) -> None:
    keys = [(mesh, name) for mesh in meshes for name in NAMES]
    random.Random(7).shuffle(keys)
    for mesh, name in keys:
        store.create(make("Dataplane", mesh, name))
    store.create(make("TrafficRoute", meshes[0], "not-a-dataplane"))


def test_list_by_type_and_mesh_is_ordered_by_name(store: ResourceStore) -> None:
    _fill(store, ["demo", "other"])
    page = store.list("Dataplane", "demo")
    assert page.total == len(NAMES)
    assert [r.name for r in page.items] == sorted(NAMES)  # code-point order, in both stores
    assert {r.mesh for r in page.items} == {"demo"}
    assert all(r.type == "Dataplane" and r.version == 1 for r in page.items)
    assert wire(page.items[0]) == SPECS["Dataplane"]
    assert store.list("Dataplane", "nobody").total == 0
    assert store.list("HealthCheck", "demo").items == []


def test_list_across_meshes_is_ordered_by_mesh_then_name(store: ResourceStore) -> None:
    _fill(store, ["zeta", "alpha", "alpha-2"])
    page = store.list("Dataplane")
    expected = [(m, n) for m in sorted(["zeta", "alpha", "alpha-2"]) for n in sorted(NAMES)]
    assert [(r.mesh, r.name) for r in page.items] == expected
    assert page.total == len(expected)
    assert [r.name for r in store.list("TrafficRoute").items] == ["not-a-dataplane"]


def test_list_hands_back_what_the_caller_holds_at_the_same_revision(
    store: ResourceStore,
) -> None:
    # The xDS service reads its whole mesh on every change: a row it already holds is not
    # decoded again, and a row written since is never answered with what it holds.
    _fill(store, ["demo"])
    held = store.list("Dataplane", "demo").items
    known = {stored_key(r): r for r in held}
    moved = {"networking": {"inbound": [{"interface": "10.0.0.9:1:2", "tags": {"service": "x"}}]}}
    updated = store.update(make("Dataplane", "demo", "web", moved, version=1))

    again = store.list("Dataplane", "demo", known=known).items

    assert [r.name for r in again] == [r.name for r in held]
    for before, after in zip(held, again, strict=True):
        if after.name == "web":
            assert after is not before and after.revision == updated.revision
            assert wire(after) == moved
        else:
            assert after is before
    assert store.list("Dataplane", "demo", known={}).items == again


def test_list_pagination(store: ResourceStore) -> None:
    _fill(store, ["m1", "m2"])
    everything = [(r.mesh, r.name) for r in store.list("Dataplane").items]
    assert len(everything) == 16
    pages = []
    for offset in range(0, 16, 5):
        page = store.list("Dataplane", offset=offset, limit=5)
        assert page.total == 16
        pages.extend((r.mesh, r.name) for r in page.items)
    assert pages == everything
    in_mesh = store.list("Dataplane", "m2", offset=6, limit=5)
    assert ([r.name for r in in_mesh.items], in_mesh.total) == (sorted(NAMES)[6:], 8)
    assert store.list("Dataplane", offset=99, limit=5).items == []
    assert store.list("Dataplane", offset=99).total == 16
    assert store.list("Dataplane", "m1", limit=0).items == []
    assert store.list("Dataplane", "m1", limit=0).total == 8
    assert len(store.list("Dataplane", offset=15).items) == 1
    with pytest.raises(ValueError):
        store.list("Dataplane", offset=-1)


# --- Mesh delete cascade --------------------------------------------------------------------


def test_deleting_a_mesh_removes_everything_in_it_and_nothing_else(store: ResourceStore) -> None:
    for mesh in ("doomed", "kept"):
        for type_ in TYPES:
            store.create(make(type_, mesh, mesh if type_ == "Mesh" else "one"))
            if type_ != "Mesh":
                store.create(make(type_, mesh, "two"))
    kept_before = {t: store.list(t, "kept").items for t in TYPES}

    revision = store.delete("Mesh", "doomed", "doomed")
    assert revision == store.revision()
    for type_ in TYPES:
        assert store.list(type_, "doomed").total == 0, type_
        after = store.list(type_, "kept").items
        assert after == kept_before[type_], type_
    with pytest.raises(NotFoundError):
        store.get("Secret", "doomed", "one")
    assert store.get("Secret", "kept", "one").spec.data == SECRET_BYTES


def test_mesh_delete_leaves_nothing_written_before_it(store: ResourceStore) -> None:
    """Creators racing a Mesh delete: whatever survives in that mesh was written after the
    delete (a later revision); nothing written before it escapes the cascade."""
    store.create(make("Mesh", "racy", "racy"))
    stop = threading.Event()
    errors: list[BaseException] = []

    def create(writer: int) -> None:
        try:
            for i in range(10_000):
                if stop.is_set():
                    return
                store.create(make("Dataplane", "racy", f"dp-{writer}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while store.list("Dataplane", "racy", limit=0).total < 20:
        time.sleep(0.001)
    deleted_at = store.delete("Mesh", "racy", "racy")
    time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    survivors = store.list("Dataplane", "racy").items
    assert [r.name for r in survivors if r.revision < deleted_at] == []


# --- revision -------------------------------------------------------------------------------


def test_revision_moves_with_every_write_and_never_on_reads(store: ResourceStore) -> None:
    seen = [store.revision()]

    def wrote(revision: int) -> None:
        assert revision == store.revision() > seen[-1]
        seen.append(revision)

    def read_everything() -> None:
        revision = store.revision()
        store.get("Mesh", "rev", "rev")
        store.list("Dataplane")
        store.list("Dataplane", "rev", offset=1, limit=1)
        store.ping()
        with pytest.raises(NotFoundError):
            store.get("Dataplane", "rev", "nope")
        with pytest.raises(AlreadyExistsError):
            store.create(make("Mesh", "rev", "rev"))
        with pytest.raises(ConflictError):
            store.update(make("Mesh", "rev", "rev", version=99))
        assert store.revision() == revision

    wrote(store.create(make("Mesh", "rev", "rev")).revision)
    read_everything()
    wrote(store.create(make("Dataplane", "rev", "dp")).revision)
    wrote(store.create(make("Secret", "rev", "key")).revision)
    wrote(store.update(make("Dataplane", "rev", "dp", version=1)).revision)
    wrote(store.update(make("Secret", "rev", "key", "AAAA", version=1)).revision)
    read_everything()
    wrote(store.delete("Secret", "rev", "key"))
    wrote(store.delete("Mesh", "rev", "rev"))
    assert seen == sorted(set(seen))


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_creators_of_one_key_have_one_winner(store: ResourceStore) -> None:
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            store.create(make("TrafficLog", "race", "log", {"conf": {"backend": f"b{i}"}}))
            outcomes.append("won")
        except AlreadyExistsError:
            outcomes.append("lost")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 9 + ["won"]
    assert store.get("TrafficLog", "race", "log").version == 1


UPDATERS = 20
WINS_PER_UPDATER = 3


def _next_route(current: dict[str, Any], writer: int, round_: int) -> dict[str, Any]:
    """Read-modify-write: the spec read plus one entry naming its writer everywhere, so a
    lost update drops an entry and a mixed write shows fields of two writers."""
    tag = f"w{writer}-r{round_}"
    return {
        "sources": [{"match": {"service": f"src-{tag}"}}],
        "destinations": [{"match": {"service": f"dst-{tag}"}}],
        "conf": [
            *current.get("conf", []),
            {"weight": writer + 1, "destination": {"service": f"to-{tag}"}},
        ],
    }


def test_concurrent_updaters_never_lose_or_mix_a_write(store: ResourceStore) -> None:
    """20 threads loop get -> modify -> update, retrying on conflict: every version has exactly
    one winner, versions are contiguous, each win is based on the version it read, and the
    stored spec is the last winner's, whole."""
    store.create(make("TrafficRoute", "race", "route", {"conf": []}))
    barrier = threading.Barrier(UPDATERS)
    wins: list[tuple[int, int, int, dict[str, Any]]] = []  # (read, written, revision, spec)
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def updater(writer: int) -> None:
        try:
            barrier.wait()
            for round_ in range(WINS_PER_UPDATER):
                while True:
                    current = store.get("TrafficRoute", "race", "route")
                    spec = _next_route(wire(current), writer, round_)
                    try:
                        done = store.update(
                            make("TrafficRoute", "race", "route", spec, version=current.version)
                        )
                    except ConflictError:
                        conflicts.append(writer)
                        continue
                    wins.append((current.version, done.version, done.revision, spec))
                    break
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    threads = [threading.Thread(target=updater, args=(i,)) for i in range(UPDATERS)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave threads finely, so the memory store is raced too
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors
    assert conflicts, "the updaters never raced: the test proves nothing"
    total = UPDATERS * WINS_PER_UPDATER
    versions = sorted(written for _, written, _, _ in wins)
    assert versions == list(range(2, 2 + total))  # one winner per version, no gap
    assert all(written == read + 1 for read, written, _, _ in wins)
    by_version = sorted(wins, key=lambda w: w[1])
    revisions = [revision for _, _, revision, _ in by_version]
    assert revisions == sorted(set(revisions))  # revision order == version order
    final = store.get("TrafficRoute", "race", "route")
    assert final.version == 1 + total
    assert wire(final) == by_version[-1][3]
    assert len(wire(final)["conf"]) == total  # every win is in: none lost


def test_concurrent_writes_to_different_resources_each_get_their_own_revision(
    store: ResourceStore,
) -> None:
    """Writers that never conflict still go through the one revision counter: no two writes
    share a revision, and the counter ends at the last one."""
    writers, rounds = 8, 25
    start = store.revision()
    barrier = threading.Barrier(writers)
    revisions: list[int] = []
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            barrier.wait()
            name = f"dp-{writer}"
            revisions.append(store.create(make("Dataplane", "busy", name)).revision)
            for version in range(1, rounds):
                done = store.update(make("Dataplane", "busy", name, version=version))
                revisions.append(done.revision)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors
    assert len(revisions) == len(set(revisions)) == writers * rounds
    assert store.revision() == max(revisions) == start + writers * rounds
