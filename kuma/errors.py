"""The one error hierarchy of the product.

Every layer raises these; each shell (HTTP, gRPC, CLI) maps them to its own codes in one place.
`http_status` and `grpc_status` (a `grpc.StatusCode` name) are those mappings, kept here so that
they cannot drift between services; `error_body` is Kuma's error shape for every HTTP service.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One `{field, message}` pair of a validation error (spec §3.14)."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class KumaError(Exception):
    """Base of every error the product raises on purpose."""

    http_status = 500
    grpc_status = "INTERNAL"
    details = "Internal Server Error"


class ValidationError(KumaError):
    """Bad input: undecodable text, wrong field types, unknown type, or a rule of spec §3 broken.

    `violations` carries Kuma's field paths; `str()` is Kuma's `f1: m1; f2: m2` form.
    """

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    details = "Resource is not valid"

    def __init__(self, violations: list[Violation] | None = None, details: str | None = None):
        self.violations = list(violations or [])
        if details is not None:
            self.details = details
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.violations:
            return self.details
        return "; ".join(f"{v.field}: {v.message}" for v in self.violations)


class ResourceKeyError(KumaError):
    """An error about one resource, named by (type, mesh, name)."""

    problem = "failed"

    def __init__(self, type_: str, mesh: str, name: str):
        self.type, self.mesh, self.name = type_, mesh, name
        super().__init__(f"{type_} {name!r} in mesh {mesh!r} {self.problem}")


class NotFoundError(ResourceKeyError):
    http_status = 404
    grpc_status = "NOT_FOUND"
    details = "Not found"
    problem = "not found"


class MeshNotFoundError(KumaError):
    """Creating a resource in a Mesh that does not exist (spec §3.15)."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    details = "Mesh is not found"

    def __init__(self, mesh: str):
        self.mesh = mesh
        self.violations = [Violation("mesh", f"mesh of name {mesh} is not found")]
        super().__init__(f"mesh of name {mesh} is not found")


class AlreadyExistsError(ResourceKeyError):
    http_status = 409
    grpc_status = "ALREADY_EXISTS"
    details = "Resource already exists"
    problem = "already exists"


class ConflictError(ResourceKeyError):
    """An update carried a version that is no longer current: someone else wrote first."""

    http_status = 409
    grpc_status = "ABORTED"
    details = "Resource conflict"
    problem = "was changed concurrently"


class UnauthorizedError(KumaError):
    """A credential (a dataplane token) is missing, invalid, or belongs to someone else."""

    http_status = 401
    grpc_status = "UNAUTHENTICATED"
    details = "Unauthorized"


class ForbiddenError(UnauthorizedError):
    """A valid credential that belongs to someone else (another Dataplane, another namespace).
    HTTP keeps Kuma's 401; gRPC answers PERMISSION_DENIED rather than UNAUTHENTICATED."""

    grpc_status = "PERMISSION_DENIED"


class PreconditionFailedError(KumaError):
    http_status = 412
    grpc_status = "FAILED_PRECONDITION"
    details = "Precondition Failed"


class StoreUnavailableError(KumaError):
    """The store cannot be reached (database down, pool exhausted)."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    details = "Store unavailable"


class ConfigError(KumaError):
    """Invalid kuma-cp configuration; the message names the key (spec §2.2)."""


def error_body(
    title: str, details: str, causes: list[Violation] | None = None
) -> dict[str, object]:
    """Kuma's error shape: `{"title", "details", "causes"?}` (spec §4.4)."""
    body: dict[str, object] = {"title": title, "details": details}
    if causes:
        body["causes"] = [c.to_json() for c in causes]
    return body
