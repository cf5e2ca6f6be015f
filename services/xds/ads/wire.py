"""SotW responses in their wire form: written once per answer, not once per stream.

A DiscoveryResponse is its fields' encodings one after another, in any order, so the part
every stream sends alike (version and resources, which depend on the answer alone) is encoded
once per answer and selection, and each response appends its type URL and nonce. Building
the message for each stream copied every resource into it and encoded them again: for a
mesh-wide change, once per dataplane.

gRPC writes what a handler hands it through the method's response serializer; the ADS and SDS
servers register theirs with `serialize`, which passes a WireResponse's bytes through and
encodes any other message (delta and error paths) as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from services.xds.ads.types import PREFIX

# DiscoveryResponse's field numbers (envoy/service/discovery/v3/discovery.proto)
_VERSION_INFO, _RESOURCES, _TYPE_URL, _NONCE = 1, 2, 4, 5
# google.protobuf.Any's
_ANY_TYPE_URL, _ANY_VALUE = 1, 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field: its key, its length, its bytes."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def packed_any(message: Message) -> tuple[bytes, bytes]:
    """`message` in an encoded `Any`, and its own encoding: the bytes
    `Any.Pack(message, deterministic=True)` serializes to, without making the `Any` (a
    resource is packed once and its `Any` copied into every response that carries it)."""
    value = message.SerializeToString(deterministic=True)
    type_url = (PREFIX + message.DESCRIPTOR.full_name).encode()
    return _field(_ANY_TYPE_URL, type_url) + _field(_ANY_VALUE, value), value


def response_body(version: str, resources: Iterable[bytes]) -> bytes:
    """The response's version and resources (`resources` are encoded `Any`s)."""
    parts = [_field(_VERSION_INFO, version.encode())]
    parts.extend(_field(_RESOURCES, r) for r in resources)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class WireResponse:
    """A SotW DiscoveryResponse ready to write: what a stream reads of its own response, and
    the encoded message."""

    type_url: str
    version_info: str
    nonce: str
    data: bytes

    @classmethod
    def of(cls, body: bytes, type_url: str, version: str, nonce: str) -> WireResponse:
        tail = _field(_TYPE_URL, type_url.encode()) + _field(_NONCE, nonce.encode())
        return cls(type_url, version, nonce, body + tail)

    def message(self) -> discovery_pb2.DiscoveryResponse:
        return discovery_pb2.DiscoveryResponse.FromString(self.data)


def serialize(response: Any) -> bytes:
    if isinstance(response, WireResponse):
        return response.data
    return response.SerializeToString()  # type: ignore[no-any-return]


def register(
    server: grpc.aio.Server, servicer: Any, service: str, methods: Mapping[str, Any]
) -> None:
    """Register `servicer`'s stream-stream `methods` (name -> request message class) under
    `service`, their responses written through `serialize`."""
    handlers = {
        name: grpc.stream_stream_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=request.FromString,
            response_serializer=serialize,
        )
        for name, request in methods.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
