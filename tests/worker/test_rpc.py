"""The signing RPC against the real RabbitMQ: a `kuma-worker` process on a fresh Postgres
database, called by plain Python processes (no nameko, no eventlet) through
kuma/edge/worker_client.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509

from kuma import ca, provided_ca
from kuma.edge.worker_client import WorkerRpcClient, WorkerUnavailableError, worker_key
from kuma.errors import MeshNotFoundError
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, decode_spec
from kuma.wiring import open_core
from tests.ca_certs import make_ca
from tests.conftest import fresh_database
from tests.ports import free_port
from tests.prom_text import sample_sum
from tests.worker.conftest import ROOT, Worker, cfg_of, run_python, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

MESH_NAME = "secure"
PROVIDED, EMPTY = "operator", "operator-empty"
PROVIDED_CA = make_ca("operator-root")


@pytest.fixture(scope="module")
def worker(
    run_id: str, amqp_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("rpc")
    with fresh_database(f"kuma_test_{run_id}_rpc") as pg:
        env = worker_env(pg, amqp_uri, tmp, KUMA_WORKER_METRICS_PORT=str(free_port()))
        proc = Worker(env, tmp / "worker.log")
        try:
            proc.wait_healthy()
            core = open_core(cfg_of(env))
            try:
                spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
                core.manager.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))
                # A mesh of the operator's CA, and one whose CA lost its certificate.
                provided_ca.add_signing_cert(core.store, PROVIDED, *PROVIDED_CA)
                spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"provided": {}}}})
                core.manager.create(Resource(MESH, PROVIDED, PROVIDED, spec))
                gone = provided_ca.add_signing_cert(core.store, EMPTY, *make_ca())
                spec = decode_spec(MESH, {"mtls": {"ca": {"provided": {}}}})
                core.manager.create(Resource(MESH, EMPTY, EMPTY, spec))
                provided_ca.delete_signing_cert(core.store, EMPTY, gone.id)
            finally:
                core.close()
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def client(worker: Worker, amqp_uri: str) -> Iterator[WorkerRpcClient]:
    core = open_core(cfg_of(worker.env))
    try:
        key = worker_key(core.store)
    finally:
        core.close()
    with WorkerRpcClient(amqp_uri, timeout=10, key=key) as rpc:
        yield rpc


CLIENT_SCRIPT = """
import json, os, sys, time
from kuma import ca, provided_ca
from kuma.config import load_config
from kuma.wiring import open_store
from kuma.edge.worker_client import WorkerRpcClient, worker_key

store = open_store(load_config())
key = ca.new_private_key()
csr = ca.workload_csr(key, {mesh!r}, "backend")
with WorkerRpcClient(os.environ["KUMA_WORKER_AMQP_URI"], key=worker_key(store)) as rpc:
    chain = rpc.sign({mesh!r}, "backend", csr, 3600)
    bundle = rpc.mesh_ca({mesh!r})
print(json.dumps({{
    "chain": chain,
    "bundle": bundle,
    "key": ca.private_key_pem(key).decode(),
    "modules": sorted(m for m in ("eventlet", "nameko", "greenlet") if m in sys.modules),
}}))
"""


def test_plain_process_gets_a_verifiable_workload_certificate(worker: Worker) -> None:
    out = run_python(CLIENT_SCRIPT.format(mesh=MESH_NAME), worker.env)
    assert out["modules"] == []  # the client never loads nameko or eventlet

    chain = x509.load_pem_x509_certificates(out["chain"].encode())
    roots = x509.load_pem_x509_certificates(out["bundle"].encode())
    leaf, root = chain[0], roots[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://{MESH_NAME}/backend"
    ]
    now = datetime.now(UTC)
    assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
    assert timedelta(minutes=59) < leaf.not_valid_after_utc - now <= timedelta(hours=1)
    leaf.verify_directly_issued_by(root)  # raises when the chain does not verify
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # the certificate is for the key the caller kept
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(out["key"].encode(), password=None)
    assert leaf.public_key() == key.public_key()


def test_the_provided_ca_signs_over_rpc(client: WorkerRpcClient) -> None:
    """The worker signs with the operator's CA, and answers its certificate as the bundle."""
    cert_pem, _ = PROVIDED_CA
    assert client.mesh_ca(PROVIDED).encode() == cert_pem
    key = ca.new_private_key()
    chain = client.sign(PROVIDED, "backend", ca.workload_csr(key, PROVIDED, "backend"), 600)
    leaf = ca.check_workload_chain(chain.encode(), key.public_key(), PROVIDED, "backend", cert_pem)
    assert leaf.issuer == x509.load_pem_x509_certificate(cert_pem).subject
    csr = ca.workload_csr(ca.new_private_key(), EMPTY, "backend")
    with pytest.raises(ca.UnsupportedCaError, match="no signing certificate"):
        client.sign(EMPTY, "backend", csr, 600)


def test_bad_csr_is_a_clear_rpc_error(client: WorkerRpcClient) -> None:
    with pytest.raises(ca.CertificateRequestError, match="not a PEM certificate request"):
        client.sign(MESH_NAME, "backend", "-----BEGIN CERTIFICATE REQUEST-----\nnope\n", 60)


def test_csr_of_another_identity_is_refused(client: WorkerRpcClient) -> None:
    csr = ca.workload_csr(ca.new_private_key(), MESH_NAME, "intruder")
    with pytest.raises(ca.CertificateRequestError, match=f"expected only spiffe://{MESH_NAME}/web"):
        client.sign(MESH_NAME, "web", csr, 60)


def test_unknown_mesh(client: WorkerRpcClient) -> None:
    csr = ca.workload_csr(ca.new_private_key(), "ghost", "web")
    with pytest.raises(MeshNotFoundError, match="ghost"):
        client.sign("ghost", "web", csr, 60)
    with pytest.raises(MeshNotFoundError):
        client.mesh_ca("ghost")


def test_no_such_service_fails_at_once(worker: Worker, amqp_uri: str) -> None:
    with WorkerRpcClient(amqp_uri, service="nobody_listens", timeout=10) as rpc:
        started = time.monotonic()
        with pytest.raises(WorkerUnavailableError, match="no nobody_listens service"):
            rpc.ping()
        assert time.monotonic() - started < 5


def test_ping_and_health_commands(client: WorkerRpcClient, worker: Worker) -> None:
    assert client.ping()["service"] == "kuma_worker"
    for flag in ("--health", "--health-file"):
        done = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", "services.worker.main", flag],
            cwd=ROOT,
            env=worker.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def test_worker_log_is_clean(worker: Worker) -> None:
    text = Path(worker.log_path).read_text()
    assert "Traceback" not in text, text


def test_worker_serves_its_metrics(client: WorkerRpcClient, worker: Worker) -> None:
    """Kuma's `cert_generation` by mesh, and the `store` operations signing needed."""
    url = f"http://127.0.0.1:{worker.env['KUMA_WORKER_METRICS_PORT']}/metrics"

    def metric(name: str, **labels: str) -> float:
        return sample_sum(requests.get(url, timeout=5).text, name, **labels)

    signed, reads = metric("cert_generation", mesh=MESH_NAME), metric("store_count")
    csr = ca.workload_csr(ca.new_private_key(), MESH_NAME, "backend")
    client.sign(MESH_NAME, "backend", csr, 600)
    client.sign(MESH_NAME, "backend", csr, 600)
    assert metric("cert_generation", mesh=MESH_NAME) == signed + 2
    assert metric("store_count", resource_type="Secret") > 0
    assert metric("store_count") > reads
