"""Resource types, their protobuf-JSON mapping and validation (spec §3)."""
