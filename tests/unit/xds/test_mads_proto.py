"""The checked-in MADS code is what services/xds/mads/proto/generate.py makes of mads.proto, and
its names are Kuma 0.3.2's on the wire (the gRPC method paths and the type URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.xds.mads.assignments import TYPE_URL
from services.xds.mads.proto import generate, mads_pb2

GENERATED = ("mads_pb2.py", "mads_pb2.pyi", "mads_pb2_grpc.py")


def test_generated_code_is_up_to_date(tmp_path: Path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the dev extra) regenerates the code")
    generate.generate(tmp_path)
    here = Path(generate.__file__).parent
    made = tmp_path / "services" / "xds" / "mads" / "proto"
    for name in GENERATED:
        assert (made / name).read_bytes() == (here / name).read_bytes(), (
            f"{name} is stale: run .venv/bin/python services/xds/mads/proto/generate.py"
        )


def test_kumas_names_on_the_wire():
    service = mads_pb2.DESCRIPTOR.services_by_name["MonitoringAssignmentDiscoveryService"]
    assert service.full_name == "kuma.observability.v1alpha1.MonitoringAssignmentDiscoveryService"
    stream = service.methods_by_name["StreamMonitoringAssignments"]
    assert stream.input_type.full_name == "envoy.api.v2.DiscoveryRequest"
    assert stream.output_type.full_name == "envoy.api.v2.DiscoveryResponse"
    full_name = mads_pb2.MonitoringAssignment.DESCRIPTOR.full_name
    assert TYPE_URL.removeprefix("type.googleapis.com/") == full_name
