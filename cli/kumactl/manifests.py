"""The Kubernetes manifests of `kumactl install control-plane` (spec §6.10), for this product's
split services: API, xDS+SDS (2 replicas), bootstrap, injector and worker, sharing Postgres, Redis
and RabbitMQ whose settings travel in a ConfigMap (plain) and a Secret (credentials).

The CustomResourceDefinitions of Kuma's kinds come from `crds` (spec §11.5).

Pure: options in, a sorted list of documents out. Every document is checked by
`kubernetes-validate --strict` in the tests.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cli.kumactl import crds
from cli.kumactl.tls import KeyPair
from kuma.resource_text import dump_yaml

Doc = dict[str, Any]

# Helm's install order (what Kuma sorted by); kinds not listed (webhook configurations) go last.
KIND_ORDER = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
)

API_PORT = 5681
DIAGNOSTICS_PORT = 5680
XDS_PORT = 5678
SDS_PORT = 5677
BOOTSTRAP_PORT = 5682
INJECTOR_PORT = 8443
SDS_CERT_DIR = "/var/run/secrets/kuma.io/kuma-sds/tls-cert"
INJECTOR_CERT_DIR = "/var/run/secrets/kuma.io/kuma-injector/tls-cert"
LABELS = {"app.kubernetes.io/part-of": "kuma"}  # on every document


@dataclass(frozen=True)
class InstallOptions:
    namespace: str
    image_pull_policy: str
    control_plane_version: str
    control_plane_image: str
    control_plane_service_name: str
    injector_service_name: str
    injector_failure_policy: str
    dataplane_image: str
    dataplane_init_image: str
    xds_replicas: int
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str
    postgres_tls_mode: str
    redis_url: str
    rabbitmq_url: str
    sds_tls: KeyPair
    injector_tls: KeyPair

    @property
    def cp_image(self) -> str:
        return f"{self.control_plane_image}:{self.control_plane_version}"

    def svc(self, suffix: str = "") -> str:
        return f"{self.control_plane_service_name}{suffix}"

    @property
    def config_map(self) -> str:
        return self.svc("-config")

    @property
    def credentials(self) -> str:
        return self.svc("-credentials")


@dataclass(frozen=True)
class Service:
    """One deployable service of the split (DESIGN.md §1)."""

    suffix: str  # "" for the API: its Service keeps Kuma's name, kuma-control-plane
    command: str  # console script (pyproject [project.scripts]) and its arguments
    replicas: int
    ports: Sequence[tuple[str, int, int]]  # (name, service port, container port)
    probe: Doc | None
    account: str = "kuma-control-plane"
    env: Sequence[tuple[str, str]] = ()
    volume: tuple[str, str] | None = None  # (secret name, mount path)
    readiness: Doc | None = None  # default: the liveness probe
    shared_settings: bool = True  # envFrom the store/feed ConfigMap and credentials Secret


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode("ascii")


def _meta(name: str, o: InstallOptions, namespaced: bool = True) -> Doc:
    meta: Doc = {"name": name, "labels": dict(LABELS)}
    if namespaced:
        meta["namespace"] = o.namespace
    return meta


def _tcp(port: int) -> Doc:
    return {"tcpSocket": {"port": port}}


def _http(path: str, port: int, scheme: str = "HTTP") -> Doc:
    return {"httpGet": {"path": path, "port": port, "scheme": scheme}}


def services(o: InstallOptions) -> list[Service]:
    sds_host = f"{o.svc('-xds')}.{o.namespace}.svc"
    return [
        Service(
            "",
            "kuma-api",
            1,
            [("http-api", API_PORT, API_PORT)],
            _http("/ready", DIAGNOSTICS_PORT),
        ),
        Service(
            "-xds",
            "kuma-xds",
            o.xds_replicas,
            [("grpc-xds", XDS_PORT, XDS_PORT), ("grpc-sds", SDS_PORT, SDS_PORT)],
            _tcp(XDS_PORT),
            env=[
                ("KUMA_SDS_SERVER_TLS_CERT_FILE", f"{SDS_CERT_DIR}/tls.crt"),
                ("KUMA_SDS_SERVER_TLS_KEY_FILE", f"{SDS_CERT_DIR}/tls.key"),
                ("KUMA_GENERAL_ADVERTISED_HOSTNAME", sds_host),
            ],
            volume=("kuma-sds-tls-cert", SDS_CERT_DIR),
        ),
        Service(
            "-bootstrap",
            "kuma-bootstrap",
            1,
            [("http-bootstrap", BOOTSTRAP_PORT, BOOTSTRAP_PORT)],
            _tcp(BOOTSTRAP_PORT),
        ),
        Service("-worker", "kuma-worker", 1, [], None),
    ]


def _injector(o: InstallOptions) -> Service:
    return Service(
        "",
        "kuma-injector run",  # Kuma's form
        1,
        [("https-injector", 443, INJECTOR_PORT)],
        _http("/healthy", INJECTOR_PORT, "HTTPS"),
        account="kuma-injector",
        readiness=_http("/ready", INJECTOR_PORT, "HTTPS"),
        shared_settings=False,  # asks the API for Meshes: no store, no credentials
        env=[
            ("KUMA_INJECTOR_WEBHOOK_SERVER_PORT", str(INJECTOR_PORT)),
            ("KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR", INJECTOR_CERT_DIR),
            (
                "KUMA_INJECTOR_CONTROL_PLANE_API_SERVER_URL",
                f"http://{o.svc()}.{o.namespace}:{API_PORT}",
            ),
            (
                "KUMA_INJECTOR_SIDECAR_CONTAINER_IMAGE",
                f"{o.dataplane_image}:{o.control_plane_version}",
            ),
            (
                "KUMA_INJECTOR_INIT_CONTAINER_IMAGE",
                f"{o.dataplane_init_image}:{o.control_plane_version}",
            ),
        ],
        volume=("kuma-injector-tls-cert", INJECTOR_CERT_DIR),
    )


def _deployment(name: str, s: Service, o: InstallOptions) -> Doc:
    labels = {"app": name}
    container: Doc = {
        "name": name,
        "image": o.cp_image,
        "imagePullPolicy": o.image_pull_policy,
        "command": s.command.split(),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    }
    if s.shared_settings:
        container["envFrom"] = [
            {"configMapRef": {"name": o.config_map}},
            {"secretRef": {"name": o.credentials}},
        ]
    if s.env:
        container["env"] = [{"name": k, "value": v} for k, v in s.env]
    if s.ports:
        container["ports"] = [{"name": n, "containerPort": c} for n, _, c in s.ports]
    if s.probe:
        container["livenessProbe"] = {**s.probe, "initialDelaySeconds": 10, "periodSeconds": 10}
        ready = s.readiness or s.probe
        container["readinessProbe"] = {**ready, "initialDelaySeconds": 1, "periodSeconds": 5}
    pod: Doc = {"serviceAccountName": s.account, "containers": [container]}
    if s.volume:
        secret, path = s.volume
        container["volumeMounts"] = [{"name": secret, "mountPath": path, "readOnly": True}]
        pod["volumes"] = [{"name": secret, "secret": {"secretName": secret}}]
    meta = _meta(name, o)
    meta["labels"].update(labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": s.replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _service(name: str, s: Service, o: InstallOptions) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, o),
        "spec": {
            "selector": {"app": name},
            "ports": [
                {"name": n, "port": p, "targetPort": c, "protocol": "TCP"} for n, p, c in s.ports
            ],
        },
    }


def _tls_secret(name: str, pair: KeyPair, o: InstallOptions) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": _meta(name, o),
        "data": {"tls.crt": b64(pair.cert_pem), "tls.key": b64(pair.key_pem)},
    }


def _settings(o: InstallOptions) -> list[Doc]:
    plain = {
        "KUMA_STORE_TYPE": "postgres",
        "KUMA_STORE_MIGRATE_ON_START": "true",
        "KUMA_STORE_POSTGRES_HOST": o.postgres_host,
        "KUMA_STORE_POSTGRES_PORT": str(o.postgres_port),
        "KUMA_STORE_POSTGRES_USER": o.postgres_user,
        "KUMA_STORE_POSTGRES_DB_NAME": o.postgres_db,
        "KUMA_STORE_POSTGRES_TLS_MODE": o.postgres_tls_mode,
        "KUMA_CHANGE_FEED_TYPE": "redis",
        "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": f"{o.svc('-xds')}.{o.namespace}.svc",
        "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": str(XDS_PORT),
    }
    secret = {
        "KUMA_STORE_POSTGRES_PASSWORD": o.postgres_password,
        "KUMA_CHANGE_FEED_REDIS_URL": o.redis_url,
        "KUMA_WORKER_AMQP_URI": o.rabbitmq_url,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(o.config_map, o),
            "data": plain,
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": _meta(o.credentials, o),
            "data": {k: b64(v) for k, v in secret.items()},
        },
    ]


def _rbac(o: InstallOptions) -> list[Doc]:
    docs: list[Doc] = []
    rules = {
        "kuma-control-plane": [
            {
                "apiGroups": [""],
                "resources": ["namespaces", "pods", "services"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"],
                "verbs": ["create"],
            },
        ],
    }
    # The injector needs no Kubernetes API access: namespace labels are implied by the webhook's
    # namespaceSelector and Meshes come from the control plane's API. Its account has no roles.
    docs.append(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("kuma-injector", o)}
    )
    for account, account_rules in rules.items():
        role = "kuma:" + account.removeprefix("kuma-")
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(account, o)})
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": _meta(role, o, namespaced=False),
                "rules": account_rules,
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": _meta(role, o, namespaced=False),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": o.namespace}],
            }
        )
    return docs


def _webhook(o: InstallOptions) -> Doc:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta("kuma-injector-webhook-configuration", o, namespaced=False),
        "webhooks": [
            {
                "name": "kuma-injector.kuma.io",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "failurePolicy": o.injector_failure_policy,
                # Only Pods of labelled namespaces reach the injector, which therefore treats the
                # label as given (AdmissionReview carries no namespace labels); a Pod opts out
                # with the annotation `kuma.io/sidecar-injection: disabled`.
                "namespaceSelector": {"matchLabels": {"kuma.io/sidecar-injection": "enabled"}},
                "reinvocationPolicy": "IfNeeded",
                "clientConfig": {
                    "caBundle": b64(o.injector_tls.cert_pem),
                    "service": {
                        "namespace": o.namespace,
                        "name": o.injector_service_name,
                        "path": "/inject-sidecar",
                        "port": 443,
                    },
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
            }
        ],
    }


def control_plane(o: InstallOptions) -> list[Doc]:
    docs: list[Doc] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(o.namespace, o, namespaced=False),
        },
        _tls_secret("kuma-sds-tls-cert", o.sds_tls, o),
        _tls_secret("kuma-injector-tls-cert", o.injector_tls, o),
        *_settings(o),
        *_rbac(o),
        *crds.definitions(LABELS),
        _webhook(o),
    ]
    named = [(o.svc(s.suffix), s) for s in services(o)] + [(o.injector_service_name, _injector(o))]
    for name, s in named:
        docs.append(_deployment(name, s, o))
        if s.ports:
            docs.append(_service(name, s, o))
    return sort_documents(docs)


def sort_documents(docs: list[Doc]) -> list[Doc]:
    def key(doc: Doc) -> tuple[int, str]:
        kind = doc.get("kind", "")
        rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return rank, doc.get("metadata", {}).get("name", "")

    return sorted(docs, key=key)


def render(docs: list[Doc]) -> str:
    """Each document preceded by `\\n---\\n` (spec §6.10)."""
    return "".join("\n---\n" + dump_yaml(d) for d in docs)
