"""The mesh and the change kinds every per-kind xDS benchmark uses (xds_changes, xds_generate,
xds_protocol, payload_floor).

The mesh: service `backend` on every 10th dataplane, versions v1/v2, `svc-{i % 50}` on the
others; every dataplane calls `backend`. A kind is what the mesh holds before its changes, and
the store operations of its k-th change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuma.manager import ResourceManager
from kuma.resources import wire

Op = tuple[str, dict[str, Any]]  # ("upsert", resource) or ("delete", resource)


def dataplane(i: int, versions: bool = True) -> dict[str, Any]:
    """`dp-{i}`: `backend` on every 10th (with a v1/v2 `version` tag when `versions`), else
    `svc-{i % 50}`; an address of its own up to 15 million dataplanes."""
    tags = {"service": "backend"} if i % 10 == 0 else {}
    if tags and versions:
        tags["version"] = f"v{i // 10 % 2 + 1}"
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": f"dp-{i}",
        "networking": {
            "inbound": [
                {
                    "interface": f"10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}:8080:80",
                    "tags": tags or {"service": f"svc-{i % 50}"},
                }
            ],
            "outbound": [{"interface": ":10001", "service": "backend"}],
        },
    }


def mesh(mtls: bool) -> dict[str, Any]:
    return {
        "type": "Mesh",
        "name": "default",
        "mtls": {"enabled": mtls, "ca": {"builtin": {}}},
        "logging": {
            "backends": [
                {"name": "a", "file": {"path": "/tmp/kuma-bench-a.log"}},
                {"name": "b", "file": {"path": "/tmp/kuma-bench-b.log"}},
            ]
        },
    }


def policy(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "mesh": "default",
        "name": name,
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": fields.pop("destination", "backend")}}],
        **fields,
    }


def health_check(interval: int) -> dict[str, Any]:
    conf = {"interval": f"{interval}s", "timeout": "1s", "unhealthyThreshold": 3}
    return policy(
        "HealthCheck", "backend-hc", conf={"activeChecks": {**conf, "healthyThreshold": 1}}
    )


def route(v1: int) -> dict[str, Any]:
    split = [
        {"weight": v1, "destination": {"service": "backend", "version": "v1"}},
        {"weight": 100 - v1, "destination": {"service": "backend", "version": "v2"}},
    ]
    return policy("TrafficRoute", "backend-split", conf=split)


def log(backend: str) -> dict[str, Any]:
    return policy("TrafficLog", "all", destination="*", conf={"backend": backend})


ALLOW_ALL = policy("TrafficPermission", "allow-all", destination="*")


@dataclass(frozen=True)
class Kind:
    mtls: bool  # the mesh has mTLS on while the clients connect (they take secrets)
    setup: tuple[dict[str, Any], ...]
    change: Callable[[int], list[Op]]


def _extra(k: int) -> dict[str, Any]:
    return {**dataplane(0), "name": f"extra-{k}"} | {
        "networking": {
            "inbound": [{"interface": f"10.251.0.{k + 1}:8080:80", "tags": {"service": "backend"}}]
        }
    }


KINDS: dict[str, Kind] = {
    "healthcheck": Kind(False, (health_check(10),), lambda k: [("upsert", health_check(11 + k))]),
    "trafficlog": Kind(False, (log("a"),), lambda k: [("upsert", log("b" if k % 2 == 0 else "a"))]),
    "route-weight": Kind(False, (route(50),), lambda k: [("upsert", route(51 + k))]),
    "dataplane": Kind(
        False,
        (),
        lambda k: [("upsert", _extra(k))] if k % 2 == 0 else [("delete", _extra(k - 1))],
    ),
    "permission": Kind(
        True,
        (ALLOW_ALL,),
        lambda k: [
            (
                "upsert" if k % 2 == 0 else "delete",
                policy("TrafficPermission", "extra", destination="*"),
            )
        ],
    ),
    "mtls": Kind(False, (ALLOW_ALL,), lambda k: [("upsert", mesh(k % 2 == 0))]),
}


def apply_to(manager: ResourceManager, op: str, resource: dict[str, Any]) -> None:
    res = wire.from_json(resource)
    if op == "upsert":
        manager.upsert(res)
    else:
        manager.delete(res.type, res.mesh, res.name)
