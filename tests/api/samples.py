"""One valid spec per exposed type, and a second one to update it to (spec §3.4-§3.11)."""

from __future__ import annotations

from typing import Any

SVC = {"match": {"service": "web"}}
BACKEND = {"match": {"service": "backend"}}


def dataplane_spec(service: str = "web", version: str = "v1", port: int = 9090) -> dict[str, Any]:
    return {
        "networking": {
            "inbound": [
                {
                    "interface": f"127.0.0.1:{port}:{port + 1}",
                    "tags": {"service": service, "version": version},
                }
            ]
        }
    }


# plural -> (type, spec, updated spec)
SAMPLES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "dataplanes": ("Dataplane", dataplane_spec(), dataplane_spec(version="v2")),
    "dataplane-insights": (
        "DataplaneInsight",
        {"subscriptions": [{"id": "s1", "controlPlaneInstanceId": "cp-1"}]},
        {
            "subscriptions": [
                {
                    "id": "s1",
                    "controlPlaneInstanceId": "cp-1",
                    "connectTime": "2019-07-01T00:00:00Z",
                    "status": {"total": {"responsesSent": "3"}},
                }
            ]
        },
    ),
    "health-checks": (
        "HealthCheck",
        {
            "sources": [SVC],
            "destinations": [BACKEND],
            "conf": {"passiveChecks": {"unhealthyThreshold": 3, "penaltyInterval": "5s"}},
        },
        {
            "sources": [SVC],
            "destinations": [BACKEND],
            "conf": {"passiveChecks": {"unhealthyThreshold": 5, "penaltyInterval": "10s"}},
        },
    ),
    "proxytemplates": (
        "ProxyTemplate",
        {"selectors": [SVC], "conf": {"imports": ["default-proxy"]}},
        {"selectors": [BACKEND], "conf": {"imports": ["default-proxy"]}},
    ),
    "traffic-permissions": (
        "TrafficPermission",
        {"sources": [SVC], "destinations": [BACKEND]},
        {"sources": [BACKEND], "destinations": [SVC]},
    ),
    "traffic-logs": (
        "TrafficLog",
        {"sources": [SVC], "destinations": [BACKEND]},
        {"sources": [SVC], "destinations": [BACKEND], "conf": {"backend": "file"}},
    ),
    "traffic-routes": (
        "TrafficRoute",
        {
            "sources": [SVC],
            "destinations": [BACKEND],
            "conf": [{"weight": 100, "destination": {"service": "backend"}}],
        },
        {
            "sources": [SVC],
            "destinations": [BACKEND],
            "conf": [{"weight": 50, "destination": {"service": "backend", "version": "v2"}}],
        },
    ),
}


def body(type_: str, mesh: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "mesh": mesh, "name": name, **spec}
