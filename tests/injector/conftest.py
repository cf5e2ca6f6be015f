"""Injector tests: the real `kuma-injector` (gunicorn, TLS) on 127.0.0.x with a generated
certificate, asking Meshes of the real API app (memory store, embedded server); AdmissionReview
documents sent over HTTPS; every returned patch applied with `jsonpatch` and the Pod checked with
`kubernetes-validate --strict`."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import requests

from cli.kumactl.tls import self_signed
from kuma.config import load_config
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.netutil import free_port
from kuma.resources.base import Resource
from kuma.resources.mesh import MeshSpec
from kuma.resources.registry import MESH, decode_spec
from kuma.wiring import ensure_default_mesh, open_core
from services.api.app import create_app as create_api

INJECTOR_HOST = "127.0.0.7"
API_HOST = "127.0.0.8"
K8S_VERSION = kubernetes_validate.latest_version()
ROOT = Path(__file__).resolve().parents[2]


def write_cert(directory: Path, host: str) -> Path:
    """The injector's serving certificate as `kumactl install control-plane` makes it (its own CA),
    for `host`, written as `tls.crt`/`tls.key` like the mounted kubernetes.io/tls Secret."""
    pair = self_signed("kuma-injector", "server", [host, "kuma-injector"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    (directory / "tls.key").write_bytes(pair.key_pem)
    return directory / "tls.crt"


@dataclass
class ControlPlaneApi:
    url: str
    core: Any

    def add_mesh(self, name: str, spec: dict[str, Any] | None = None) -> None:
        mesh_spec: MeshSpec = decode_spec(MESH, spec or {})
        self.core.manager.create(Resource(type=MESH, mesh=name, name=name, spec=mesh_spec))


@pytest.fixture(scope="session")
def cp_api() -> Iterator[ControlPlaneApi]:
    cfg = load_config(env={})
    core = open_core(cfg, name="kuma-injector-test-api")
    ensure_default_mesh(cfg, core.manager)
    server = ThreadedWsgiServer(create_api(cfg, core), API_HOST, 0, name="api-for-injector")
    server.start()
    api = ControlPlaneApi(server.url, core)
    api.add_mesh("metrics", {"metrics": {"prometheus": {}}})
    api.add_mesh("custom-metrics", {"metrics": {"prometheus": {"port": 1234, "path": "/stats"}}})
    yield api
    server.stop()
    core.close()


@dataclass
class Injector:
    url: str
    ca_file: str
    http: requests.Session

    # `verify` per request: REQUESTS_CA_BUNDLE in the environment would win over Session.verify.
    def post(self, body: Any, path: str = "/inject-sidecar") -> requests.Response:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes | str) else {"json": body}
        return self.http.post(self.url + path, timeout=10, verify=self.ca_file, **kwargs)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=10, verify=self.ca_file)


def injector_env(cp_url: str, cert_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(
        {
            "KUMA_INJECTOR_WEBHOOK_SERVER_ADDRESS": INJECTOR_HOST,
            "KUMA_INJECTOR_WEBHOOK_SERVER_PORT": str(port),
            "KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR": str(cert_dir),
            "KUMA_INJECTOR_CONTROL_PLANE_API_SERVER_URL": cp_url,
            "KUMA_INJECTOR_SIDECAR_CONTAINER_IMAGE": "kuma/kuma-dp:9.9.9",
            "KUMA_INJECTOR_INIT_CONTAINER_IMAGE": "kuma/kuma-init:9.9.9",
            "KUMA_INJECTOR_WORKERS": "2",
        }
    )
    return env


def injector_command() -> list[str]:
    script = Path(sys.executable).with_name("kuma-injector")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "services.injector.main"]


@pytest.fixture(scope="session")
def injector(
    cp_api: ControlPlaneApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Injector]:
    cert_dir = tmp_path_factory.mktemp("injector-tls")
    ca_file = write_cert(cert_dir, INJECTOR_HOST)
    port = free_port(INJECTOR_HOST)
    log_path = cert_dir / "injector.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            injector_command(),
            env=injector_env(cp_api.url, cert_dir, port),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    http = requests.Session()
    url = f"https://{INJECTOR_HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kuma-injector exited {proc.returncode}:\n{log_path.read_text()}")
            try:
                if http.get(url + "/healthy", timeout=2, verify=str(ca_file)).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kuma-injector did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield Injector(url, str(ca_file), http)
    finally:
        http.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- documents ---


def pod(
    *,
    name: str = "",
    generate_name: str = "web-7d4b9c-",
    namespace: str = "demo",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    token_mount: bool = True,
) -> dict[str, Any]:
    """A Pod as kube-apiserver hands it to a mutating webhook on CREATE (after the ServiceAccount
    plugin added the projected token volume)."""
    meta: dict[str, Any] = {"namespace": namespace, "labels": labels or {"app": "web"}}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    if annotations is not None:
        meta["annotations"] = annotations
    container: dict[str, Any] = {
        "name": "app",
        "image": "nginx:1.27",
        "ports": ports if ports is not None else [{"containerPort": 8080, "protocol": "TCP"}],
    }
    spec: dict[str, Any] = {"containers": [container], "serviceAccountName": "default"}
    if token_mount:
        volume = "kube-api-access-x7k2p"
        container["volumeMounts"] = [
            {
                "name": volume,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            }
        ]
        spec["volumes"] = [
            {
                "name": volume,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                    ]
                },
            }
        ]
    if init_containers is not None:
        spec["initContainers"] = init_containers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def admission_review(obj: Any, api_version: str = "admission.k8s.io/v1") -> dict[str, Any]:
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", "demo"),
        "operation": "CREATE",
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "5f6f1a4e-0000-4000-8000-000000000001",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def validate_pod(obj: dict[str, Any]) -> None:
    """`kubernetes-validate --strict` against the newest Kubernetes version it knows."""
    doc = copy.deepcopy(obj)
    if "name" not in doc["metadata"]:
        doc["metadata"]["name"] = doc["metadata"]["generateName"] + "abcde"
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
