"""A SotW response written in its wire form is the DiscoveryResponse the message API builds."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from services.xds.ads.cache import NodeSnapshot, Packed, TypeSnapshot
from services.xds.ads.types import CLUSTER, LISTENER
from services.xds.ads.wire import WireResponse, serialize


def _packed(name: str, padding: int) -> Packed:
    cluster = cluster_pb2.Cluster(name=name, alt_stat_name="x" * padding)
    return Packed.of(name, cluster)


def test_the_wire_form_is_the_message_the_api_builds() -> None:
    # lengths of one, two and three varint bytes
    items = (_packed("a", 0), _packed("b", 300), _packed("c", 70_000))
    answer = TypeSnapshot.of(items)
    selected, version = answer.selection(None)
    response = WireResponse.of(answer.response_body(None), CLUSTER, version, "170")
    expected = discovery_pb2.DiscoveryResponse(
        version_info=version,
        resources=[p.any for p in selected],
        type_url=CLUSTER,
        nonce="170",
    )
    assert response.message() == expected
    assert serialize(response) == response.data
    assert serialize(expected) == expected.SerializeToString()  # other messages as usual


def test_a_resource_is_packed_into_the_any_the_message_api_builds() -> None:
    cluster = cluster_pb2.Cluster(name="backend", alt_stat_name="x" * 300)
    expected = any_pb2.Any()
    expected.Pack(cluster, deterministic=True)
    packed = Packed.of("backend", cluster)
    assert packed.wire == expected.SerializeToString(deterministic=True)
    assert packed.any == expected
    assert packed.any.Unpack(unpacked := cluster_pb2.Cluster()) and unpacked == cluster


def test_the_body_is_encoded_once_per_selection() -> None:
    answer = TypeSnapshot.of((_packed("a", 0), _packed("b", 0)))
    first = answer.response_body(None)
    assert answer.response_body(None) is first
    only_a = WireResponse.of(answer.response_body(frozenset({"a"})), CLUSTER, "", "1")
    (resource,) = only_a.message().resources
    cluster = cluster_pb2.Cluster()
    resource.Unpack(cluster)
    assert cluster.name == "a"


def test_an_empty_answer_shared_by_every_type_answers_each_with_its_own_type() -> None:
    # One empty TypeSnapshot stands for every type a node has nothing of (a deleted mesh
    # empties them all): an LDS response must not carry the CDS type URL.
    empty = NodeSnapshot().of(CLUSTER)
    assert empty is NodeSnapshot().of(LISTENER)
    for type_url in (CLUSTER, LISTENER, CLUSTER):
        body = empty.response_body(None)
        message = WireResponse.of(body, type_url, "", "1").message()
        assert message.type_url == type_url and not message.resources
