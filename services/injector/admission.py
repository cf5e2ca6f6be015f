"""AdmissionReview in, AdmissionReview out (admission.k8s.io/v1 and v1beta1): pure functions.

`review(body, namespace_labels, meshes, cfg)` answers every well-formed request with the same
apiVersion and the request's uid:
- injection applies: `allowed: true` + a base64 JSONPatch;
- injection does not apply (opt-out, already injected, not enabled, not a Pod CREATE):
  `allowed: true` with no patch;
- the Pod names a Mesh that does not exist, or is malformed: `allowed: false` with a Status that
  says why (the Pod is rejected whole, never half-patched);
- a body that is not an AdmissionReview at all: `allowed: false`, code 400 (v1 shape when the
  apiVersion can't be told).
`StoreUnavailableError` (the control plane can't be asked) propagates: the app answers HTTP 503 so
that the webhook's failurePolicy decides (Ignore: the Pod starts without a sidecar).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kuma.decode import load_json
from kuma.errors import MeshNotFoundError, ValidationError
from services.injector import inject
from services.injector.config import InjectorSection
from services.injector.meshes import MeshLookup

log = logging.getLogger("kuma.injector")

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"
SUPPORTED = (V1, V1BETA1)
Review = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    api_version: str
    uid: str
    operation: str
    namespace: str
    name: str
    kind: Mapping[str, Any]
    object: Any


class BadReview(Exception):
    def __init__(self, message: str, api_version: str = V1, uid: str = ""):
        self.api_version, self.uid = api_version, uid
        super().__init__(message)


def parse_review(body: bytes) -> AdmissionRequest:
    try:
        doc = load_json(body)
    except ValueError as exc:
        raise BadReview(f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadReview("request body must be an AdmissionReview object")
    api_version = doc.get("apiVersion")
    if api_version not in SUPPORTED:
        raise BadReview(
            f"unsupported apiVersion {api_version!r}: expected one of {', '.join(SUPPORTED)}"
        )
    if doc.get("kind") != "AdmissionReview":
        raise BadReview(f"kind must be AdmissionReview, got {doc.get('kind')!r}", api_version)
    req = doc.get("request")
    if not isinstance(req, dict):
        raise BadReview("AdmissionReview has no request", api_version)
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid must be a non-empty string", api_version)
    kind = req.get("kind")
    return AdmissionRequest(
        api_version=api_version,
        uid=uid,
        operation=str(req.get("operation") or ""),
        namespace=str(req.get("namespace") or ""),
        name=str(req.get("name") or ""),
        kind=kind if isinstance(kind, dict) else {},
        object=req.get("object"),
    )


def _review(api_version: str, response: dict[str, Any]) -> Review:
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


def allow(api_version: str, uid: str, patch: list[dict[str, Any]] | None = None) -> Review:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode("ascii")
    return _review(api_version, response)


def deny(api_version: str, uid: str, code: int, reason: str, message: str) -> Review:
    status = {"status": "Failure", "code": code, "reason": reason, "message": message}
    return _review(api_version, {"uid": uid, "allowed": False, "status": status})


def _pod_ref(req: AdmissionRequest) -> str:
    meta = req.object.get("metadata") if isinstance(req.object, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    name = req.name or meta.get("name") or meta.get("generateName") or "<unnamed>"
    namespace = req.namespace or meta.get("namespace") or "<unknown>"
    return f"{namespace}/{name}"


def review(
    body: bytes,
    namespace_labels: Mapping[str, str],
    meshes: MeshLookup,
    cfg: InjectorSection,
) -> Review:
    try:
        req = parse_review(body)
    except BadReview as exc:
        log.warning("malformed admission request: %s", exc)
        return deny(exc.api_version, exc.uid, 400, "BadRequest", str(exc))
    if req.kind.get("kind", "Pod") != "Pod" or req.operation not in ("CREATE", ""):
        return allow(req.api_version, req.uid)
    pod = req.object
    violations = inject.check_pod(pod)
    if violations:
        message = f"cannot inject the Kuma sidecar into pod {_pod_ref(req)}: " + str(
            ValidationError(violations)
        )
        log.warning("%s", message)
        return deny(req.api_version, req.uid, 400, "BadRequest", message)
    decision = inject.decide(pod, namespace_labels)
    if not decision.inject:
        log.info("not injecting pod %s: %s", _pod_ref(req), decision.reason)
        return allow(req.api_version, req.uid)
    mesh = inject.mesh_name(pod)
    try:
        info = meshes.get(mesh)
    except MeshNotFoundError:
        message = (
            f"cannot inject the Kuma sidecar into pod {_pod_ref(req)}: mesh {mesh!r} does not "
            f"exist (annotation {inject.MESH}); create the Mesh first or name an existing one"
        )
        log.warning("%s", message)
        return deny(req.api_version, req.uid, 404, "NotFound", message)
    patch = inject.build_patch(pod, info, cfg)
    log.info("injecting pod %s into mesh %r (%s)", _pod_ref(req), mesh, decision.reason)
    return allow(req.api_version, req.uid, patch)
