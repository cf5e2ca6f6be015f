"""What a node claims of itself comes from its newest stream still open; a stream that goes
away takes its claims with it, and an SDS stream (no node description) claims nothing."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2

from services.xds.generator import ProxyMetadata
from services.xds.nodes import NodeStreams


def node(admin_port: int) -> base_pb2.Node:
    n = base_pb2.Node(id="default.web-1")
    n.metadata.fields["dataplane.admin.port"].string_value = str(admin_port)
    return n


def test_the_newest_open_stream_speaks_for_the_node() -> None:
    streams = NodeStreams()
    streams.open("a", "default.web-1", node(9901))
    streams.open("b", "default.web-1", node(9902))
    streams.open("sds", "default.web-1", None)
    assert len(streams) == 3
    assert streams.metadata("default.web-1") == ProxyMetadata(admin_port=9902)

    assert streams.close("sds") == ("default.web-1", False)
    assert streams.close("b") == ("default.web-1", True)
    assert streams.metadata("default.web-1") == ProxyMetadata(admin_port=9901)
    assert streams.close("a") == ("default.web-1", True)
    assert streams.metadata("default.web-1") is None
    assert len(streams) == 0


def test_closing_an_unknown_or_older_stream() -> None:
    streams = NodeStreams()
    assert streams.close("never-opened") is None
    streams.open("a", "default.web-1", node(9901))
    streams.open("b", "default.web-1", node(9902))
    assert streams.close("a") == ("default.web-1", False)  # the newest still speaks
    assert streams.metadata("default.web-1") == ProxyMetadata(admin_port=9902)
