"""The Packer serializes a message object once across passes, and what it keeps stays in
proportion to what is alive, even when no full pass comes (identities rotating for hours)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from services.xds.ads.cache import Packer


def cluster(name: str) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(name=name)


def test_a_message_kept_across_a_pass_is_not_packed_again():
    packer = Packer()
    shared = cluster("backend")
    first = packer.pack("backend", shared)
    packer.next_pass()
    assert packer.pack("backend", shared) is first
    packer.next_pass()
    packer.next_pass()  # two passes without it: forgotten
    assert packer.pack("backend", shared) is not first


def test_a_storm_of_new_nodes_keeps_the_shared_messages_packed_once():
    packer = Packer(floor=100)
    shared = cluster("backend")
    first = packer.pack("backend", shared)
    for i in range(1000):  # nodes connecting, each with its own messages and the shared one
        packer.serving(i + 1)
        packer.pack(f"local-{i}", cluster(f"local-{i}"))
        assert packer.pack("backend", shared) is first


def test_without_passes_entries_stay_bounded():
    packer = Packer(floor=100)
    for i in range(100):
        packer.pack(f"c{i}", cluster(f"c{i}"))
    live = [cluster(f"c{i}") for i in range(50)]
    for _ in range(40):  # rotations: new objects every time, no full pass
        live = [cluster(m.name) for m in live]
        for m in live:
            packer.pack(m.name, m)
    assert packer.size <= 2 * (100 + 1)
    kept = live[0]
    packed = packer.pack(kept.name, kept)
    assert packer.pack(kept.name, kept) is packed  # what is in use is still found
