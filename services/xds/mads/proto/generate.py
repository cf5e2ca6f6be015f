"""Regenerate mads_pb2.py, mads_pb2.pyi and mads_pb2_grpc.py from mads.proto (run from anywhere):

    .venv/bin/python services/xds/mads/proto/generate.py

It needs grpcio-tools (the `dev` extra). xds-protos ships Envoy's generated Python but not its
.proto files, so the imported `envoy/api/v2/discovery.proto` (and what it imports) is handed to
protoc as a descriptor set built from those installed modules: the generated code then imports
`envoy.api.v2.discovery_pb2` from xds-protos, as the rest of the project does.
`tests/unit/xds/test_mads_proto.py` checks that the checked-in files are what this makes."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
PROTO = "services/xds/mads/proto/mads.proto"


def dependency_set() -> bytes:
    """A FileDescriptorSet of envoy/api/v2/discovery.proto and everything it imports."""
    from envoy.api.v2 import discovery_pb2
    from google.protobuf import descriptor_pb2

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(descriptor) -> None:  # type: ignore[no-untyped-def]
        if descriptor.name in files:
            return
        for dependency in descriptor.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        files[descriptor.name] = proto

    add(discovery_pb2.DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=list(files.values())).SerializeToString()


def generate(out_dir: Path) -> None:
    """Compile mads.proto into `out_dir` (the repository root's layout below it)."""
    from grpc_tools import protoc

    with tempfile.NamedTemporaryFile(suffix=".pb") as deps:
        deps.write(dependency_set())
        deps.flush()
        code = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={deps.name}",
                f"--proto_path={ROOT}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                str(ROOT / PROTO),
            ]
        )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    generate(ROOT)
    print(f"generated next to {PROTO}")
