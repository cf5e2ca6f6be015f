"""`kumactl install control-plane` and `kumactl install database-schema` (spec §6.10)."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509

from cli.kumactl.main import cli
from cli.kumactl.manifests import KIND_ORDER
from kuma import version as build
from kuma.store.migrate import migrations
from tests.kumactl.conftest import Kumactl

K8S_VERSION = kubernetes_validate.latest_version()


def documents(text: str) -> list[dict]:
    assert text.startswith("\n---\n")
    return [yaml.safe_load(part) for part in text.split("\n---\n")[1:]]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(cli, ["install", "control-plane"], env={"HOME": str(home)})
    assert result.exit_code == 0, result.output
    return documents(result.stdout)


def test_every_document_passes_strict_validation(manifests: list[dict]):
    for doc in manifests:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_is_real(manifests: list[dict]):
    deployment = next(d for d in manifests if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_documents_are_sorted_by_install_order(manifests: list[dict]):
    ranks = [
        KIND_ORDER.index(d["kind"]) if d["kind"] in KIND_ORDER else len(KIND_ORDER)
        for d in manifests
    ]
    assert ranks == sorted(ranks)
    assert manifests[0]["kind"] == "Namespace"
    assert manifests[-1]["kind"] == "MutatingWebhookConfiguration"


def by(manifests: list[dict], kind: str, name: str) -> dict:
    return next(d for d in manifests if d["kind"] == kind and d["metadata"]["name"] == name)


def test_split_services(manifests: list[dict]):
    deployments = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in manifests if d["kind"] == "Deployment"
    }
    assert deployments == {
        "kuma-control-plane": 1,
        "kuma-control-plane-xds": 2,
        "kuma-control-plane-bootstrap": 1,
        "kuma-control-plane-worker": 1,
        "kuma-injector": 1,
    }
    ports = {
        d["metadata"]["name"]: sorted(p["port"] for p in d["spec"]["ports"])
        for d in manifests
        if d["kind"] == "Service"
    }
    assert ports == {
        "kuma-control-plane": [5681],
        "kuma-control-plane-xds": [5677, 5678],
        "kuma-control-plane-bootstrap": [5682],
        "kuma-injector": [443],
    }
    settings = by(manifests, "ConfigMap", "kuma-control-plane-config")["data"]
    assert settings["KUMA_STORE_TYPE"] == "postgres"
    assert settings["KUMA_CHANGE_FEED_TYPE"] == "redis"
    secret = by(manifests, "Secret", "kuma-control-plane-credentials")["data"]
    assert set(secret) == {
        "KUMA_STORE_POSTGRES_PASSWORD",
        "KUMA_CHANGE_FEED_REDIS_URL",
        "KUMA_WORKER_AMQP_URI",
    }


def test_injector_webhook_trusts_the_injector_certificate(manifests: list[dict]):
    webhook = by(manifests, "MutatingWebhookConfiguration", "kuma-injector-webhook-configuration")
    (hook,) = webhook["webhooks"]
    tls_secret = by(manifests, "Secret", "kuma-injector-tls-cert")
    assert tls_secret["type"] == "kubernetes.io/tls"
    assert hook["clientConfig"]["caBundle"] == tls_secret["data"]["tls.crt"]
    assert hook["clientConfig"]["service"]["path"] == "/inject-sidecar"
    assert hook["failurePolicy"] == "Ignore"
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls_secret["data"]["tls.crt"]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "kuma-injector.kuma-system.svc",
        "kuma-injector.kuma-system",
        "kuma-injector",
    ]
    injector = by(manifests, "Deployment", "kuma-injector")["spec"]["template"]["spec"]
    assert injector["containers"][0]["ports"] == [{"name": "https-injector", "containerPort": 8443}]
    assert injector["containers"][0]["command"] == ["kuma-injector", "run"]  # Kuma's form


def test_flags_change_the_output(kumactl: Kumactl):
    result = kumactl(
        "install", "control-plane", "--namespace", "mesh-ns", "--xds-replicas", "3",
        "--control-plane-version", "9.9.9", "--injector-failure-policy", "Fail",
    )  # fmt: skip
    docs = documents(result.stdout)
    assert docs[0]["metadata"]["name"] == "mesh-ns"
    xds = by(docs, "Deployment", "kuma-control-plane-xds")
    assert xds["metadata"]["namespace"] == "mesh-ns"
    assert xds["spec"]["replicas"] == 3
    assert xds["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_given_tls_material_is_used(kumactl: Kumactl):
    result = kumactl("install", "control-plane", "--sds-tls-cert", "CERT", "--sds-tls-key", "KEY")
    sds = by(documents(result.stdout), "Secret", "kuma-sds-tls-cert")
    assert base64.b64decode(sds["data"]["tls.crt"]) == b"CERT"
    result = kumactl("install", "control-plane", "--injector-tls-cert", "CERT")
    assert result.stderr == (
        "Error: Injector: both TLS Cert and TLS Key must be provided at the same time\n"
    )


def test_database_schema(kumactl: Kumactl):
    result = kumactl("install", "database-schema")
    assert result.exit_code == 0
    for migration in migrations():
        assert f"-- {migration.name}.sql\n{migration.sql.rstrip()}\n" in result.stdout
    assert "CREATE TABLE resources" in result.stdout
    result = kumactl("install", "database-schema", "--target", "mysql")
    assert result.stderr == "Error: unknown target type: mysql\n"


def test_the_images_are_the_ones_the_dockerfile_builds(kumactl: Kumactl):
    """docker-compose.yml names the Dockerfile's targets; the manifests use those names."""
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    built = {c["build"]["target"]: c["image"].split(":")[0] for c in compose.values()
             if isinstance(c, dict) and "build" in c}  # fmt: skip
    docs = documents(kumactl("install", "control-plane").stdout)
    xds = by(docs, "Deployment", "kuma-control-plane-xds")["spec"]["template"]["spec"]
    assert xds["containers"][0]["image"] == f"{built['control-plane']}:{build.version()}"
    injector = by(docs, "Deployment", "kuma-injector")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in injector["containers"][0]["env"]}
    sidecar = env["KUMA_INJECTOR_SIDECAR_CONTAINER_IMAGE"]
    assert sidecar == f"{built['kuma-dp']}:{build.version()}"
