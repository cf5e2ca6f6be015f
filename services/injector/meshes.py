"""Where the injector learns about Meshes: the control plane's API (the split deployment), or the
store directly (when the injector runs inside a process that has one, e.g. `kuma-cp run`).

Either answers `MeshInfo` or raises `MeshNotFoundError` (the Pod names a Mesh that does not
exist: a clear admission error) or `StoreUnavailableError` (the control plane cannot be asked:
the webhook answers HTTP 503 and the webhook's failurePolicy decides).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import requests

from kuma.errors import KumaError, MeshNotFoundError, NotFoundError, StoreUnavailableError
from kuma.manager import ResourceManager
from kuma.resources import mesh as mesh_rules
from kuma.resources.registry import MESH
from kuma.resources.wire import from_json
from services.injector.inject import MeshInfo


class MeshLookup(Protocol):
    def get(self, name: str) -> MeshInfo: ...


def mesh_info(name: str, spec: mesh_rules.MeshSpec) -> MeshInfo:
    prom = spec.metrics.prometheus if spec.metrics is not None else None
    if prom is None:
        return MeshInfo(name)
    return MeshInfo(
        name,
        prometheus_port=prom.port or mesh_rules.DEFAULT_PROMETHEUS_PORT,
        prometheus_path=prom.path or mesh_rules.DEFAULT_PROMETHEUS_PATH,
    )


class StoreMeshLookup:
    def __init__(self, manager: ResourceManager):
        self.manager = manager

    def get(self, name: str) -> MeshInfo:
        try:
            mesh = self.manager.get(MESH, name, name)
        except NotFoundError:
            raise MeshNotFoundError(name) from None
        return mesh_info(name, mesh.spec)


class ApiMeshLookup:
    """`GET {api}/meshes/{name}` on the control plane's API (read access needs no token)."""

    def __init__(self, api_url: str, timeout: float = 5.0, session: requests.Session | None = None):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def get(self, name: str) -> MeshInfo:
        url = f"{self.api_url}/meshes/{quote(name, safe='')}"
        try:
            resp = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise StoreUnavailableError(
                f"could not ask the control plane API ({url}): {exc}"
            ) from exc
        if resp.status_code in (400, 404):
            raise MeshNotFoundError(name)
        if resp.status_code != 200:
            raise StoreUnavailableError(
                f"the control plane API answered {resp.status_code} for {url}"
            )
        try:
            mesh = from_json(resp.json())
        except (ValueError, KumaError) as exc:
            raise StoreUnavailableError(f"unexpected Mesh from {url}: {exc}") from exc
        return mesh_info(name, mesh.spec)
