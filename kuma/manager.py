"""Resource manager semantics shared by every writer (spec §3.15): the API, `kuma-cp` start-up,
the worker. Validation and defaults happen here, before the store sees anything, so bad input
changes nothing."""

from __future__ import annotations

from dataclasses import replace

from kuma import ca, provided_ca
from kuma.errors import (
    AlreadyExistsError,
    MeshNotFoundError,
    NotFoundError,
    ValidationError,
    Violation,
)
from kuma.resources import mesh as mesh_rules
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, get_type, validate_spec
from kuma.store.base import Page, ResourceStore

# The Postgres schema's column width (spec §13.1); every store enforces it the same way.
MAX_NAME_LENGTH = 100

CA_CHANGE_FORBIDDEN = (
    "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"
)


class ResourceManager:
    def __init__(self, store: ResourceStore):
        self.store = store

    # --- reads ------------------------------------------------------------------------------

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        return self.store.get(type_, mesh, name)

    def list(
        self, type_: str, mesh: str | None = None, *, offset: int = 0, limit: int | None = None
    ) -> Page:
        return self.store.list(type_, mesh, offset=offset, limit=limit)

    # --- writes -----------------------------------------------------------------------------

    def _prepared(self, resource: Resource) -> Resource:
        rtype = get_type(resource.type)
        too_long = [
            Violation(f, f"must be at most {MAX_NAME_LENGTH} characters long")
            for f, value in (("name", resource.name), ("mesh", resource.mesh))
            if len(value) > MAX_NAME_LENGTH
        ]
        if not resource.name:
            too_long.insert(0, Violation("name", "cannot be empty"))
        if too_long:
            raise ValidationError(too_long)
        spec = resource.spec
        if rtype.is_mesh:
            spec = mesh_rules.apply_defaults(spec)
            resource = replace(resource, mesh=resource.name, spec=spec)
        validate_spec(rtype.name, spec)
        return resource

    def create(self, resource: Resource) -> Resource:
        resource = self._prepared(resource)
        if resource.type == MESH:
            self._check_provided_ca(resource)
            return self._create_mesh(resource)
        try:
            self.store.get(MESH, resource.mesh, resource.mesh)
        except NotFoundError:
            raise MeshNotFoundError(resource.mesh) from None
        return self.store.create(resource)

    def _create_mesh(self, resource: Resource) -> Resource:
        """A builtin CA is generated before the Mesh is stored, and deleted again if storing the
        Mesh fails (spec §3.4 side effects), unless it failed because a concurrent creator stored
        the Mesh: that Mesh may already use the CA."""
        created_ca = resource.spec.ca_kind == "builtin" and ca.create_builtin_ca(
            self.store, resource.name
        )
        try:
            return self.store.create(resource)
        except AlreadyExistsError:
            raise
        except BaseException:
            if created_ca:
                ca.delete_builtin_ca(self.store, resource.name)
            raise

    def update(self, resource: Resource) -> Resource:
        """Replace the spec; `resource.version` must be the version the caller read."""
        resource = self._prepared(resource)
        if resource.type == MESH:
            current = self.store.get(MESH, resource.mesh, resource.name)
            _check_ca_change(current.spec, resource.spec)
            self._check_provided_ca(resource)
        return self.store.update(resource)

    def _check_provided_ca(self, mesh: Resource) -> None:
        """A Mesh using the provided CA needs its signing certificate first (spec §3.4),
        whether mTLS is on or not."""
        if mesh.spec.ca_kind == "provided" and not provided_ca.has_signing_cert(
            self.store, mesh.name
        ):
            raise ValidationError([Violation("mtls.ca.provided", provided_ca.NO_SIGNING_CERT)])

    def upsert(self, resource: Resource) -> tuple[Resource, bool]:
        """Create, or update what is there now. Returns (stored, created)."""
        try:
            current = self.store.get(resource.type, resource.mesh, resource.name)
        except NotFoundError:
            try:
                return self.create(resource), True
            except AlreadyExistsError:
                # Lost a race with another creator: update what it wrote instead.
                current = self.store.get(resource.type, resource.mesh, resource.name)
        return self.update(replace(resource, version=current.version)), False

    def delete(self, type_: str, mesh: str, name: str) -> int:
        """Delete; a Mesh takes everything in it along (in the store's one transaction)."""
        return self.store.delete(type_, mesh, name)


def _check_ca_change(before: mesh_rules.MeshSpec, after: mesh_rules.MeshSpec) -> None:
    if before.mtls_enabled and after.mtls_enabled and before.ca_kind != after.ca_kind:
        raise ValidationError([Violation("mtls.ca", CA_CHANGE_FORBIDDEN)])


def ensure_mesh(manager: ResourceManager, name: str, spec: mesh_rules.MeshSpec) -> bool:
    """Create Mesh `name` unless it exists; safe when several processes race. True if created."""
    try:
        manager.get(MESH, name, name)
        return False
    except NotFoundError:
        pass
    try:
        manager.create(Resource(type=MESH, mesh=name, name=name, spec=spec))
        return True
    except AlreadyExistsError:
        return False
