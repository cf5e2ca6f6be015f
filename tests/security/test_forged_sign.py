"""The xDS side's check of a signed chain (`kuma.ca.check_workload_chain`, called by
`issue_identity`) against crafted replies, and the worker's proof check (`ProofVerifier`)
against forged, stale and replayed calls. No broker: tests/worker/test_signing_auth.py runs the
same attacks against the split worker on RabbitMQ."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from kuma import ca
from kuma.edge.worker_client import ProofVerifier, WorkerAuthError, make_proof, reply_mac
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, decode_spec
from kuma.store.memory import MemoryStore
from services.xds.sds.identities import IdentityManager, issue_identity

MESH_NAME = "secure"


@pytest.fixture()
def store() -> MemoryStore:
    store = MemoryStore()
    spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
    store.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))
    ca.create_builtin_ca(store, MESH_NAME)
    return store


def roots(store: MemoryStore) -> bytes:
    return ca.mesh_ca_bundle(store, MESH_NAME)


def signed(store: MemoryStore, service: str, key: ca.ec.EllipticCurvePrivateKey) -> bytes:
    return ca.sign_workload(store, MESH_NAME, service, ca.workload_csr(key, MESH_NAME, service), 60)


def test_a_genuine_chain_passes(store: MemoryStore) -> None:
    key = ca.new_private_key()
    leaf = ca.check_workload_chain(
        signed(store, "web", key), key.public_key(), MESH_NAME, "web", roots(store)
    )
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_certificate_for_another_key_is_refused(store: MemoryStore) -> None:
    chain = signed(store, "web", ca.new_private_key())
    with pytest.raises(ca.CertificateReplyError, match="another key"):
        ca.check_workload_chain(
            chain, ca.new_private_key().public_key(), MESH_NAME, "web", roots(store)
        )


def test_a_certificate_for_another_service_is_refused(store: MemoryStore) -> None:
    key = ca.new_private_key()
    chain = signed(store, "admin", key)
    with pytest.raises(ca.CertificateReplyError, match="names"):
        ca.check_workload_chain(chain, key.public_key(), MESH_NAME, "web", roots(store))


def test_a_certificate_of_another_ca_is_refused(store: MemoryStore) -> None:
    other = MemoryStore()
    spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
    other.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))  # same mesh name, another root
    key = ca.new_private_key()
    chain = signed(other, "web", key)
    with pytest.raises(ca.CertificateReplyError, match="not issued by mesh 'secure'"):
        ca.check_workload_chain(chain, key.public_key(), MESH_NAME, "web", roots(store))


def _forge(
    key: ca.ec.EllipticCurvePrivateKey,
    issuer: ca.CaRoot,
    uris: list[str],
    *,
    is_ca: bool = False,
    not_after: dt.datetime | None = None,
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=True,
        )
        .sign(issuer.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_extra_names_a_ca_leaf_and_an_expired_leaf_are_refused(store: MemoryStore) -> None:
    root = ca.ensure_builtin_ca(store, MESH_NAME)[0]
    key = ca.new_private_key()
    want = ca.spiffe_id(MESH_NAME, "web")
    cases = {
        "names": _forge(key, root, [want, ca.spiffe_id(MESH_NAME, "admin")]),
        "leaf is a CA": _forge(key, root, [want], is_ca=True),
        "not valid now": _forge(
            key, root, [want], not_after=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        ),
    }
    for match, chain in cases.items():
        with pytest.raises(ca.CertificateReplyError, match=match):
            ca.check_workload_chain(chain, key.public_key(), MESH_NAME, "web", roots(store))
    # the same forger, done right, passes: the cases above fail for the reason they name
    ca.check_workload_chain(
        _forge(key, root, [want]), key.public_key(), MESH_NAME, "web", roots(store)
    )


def test_garbage_is_refused(store: MemoryStore) -> None:
    key = ca.new_private_key()
    for chain in (b"", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"):
        with pytest.raises(ca.CertificateReplyError):
            ca.check_workload_chain(chain, key.public_key(), MESH_NAME, "web", roots(store))


class TamperingCA:
    """A CA seam whose `sign` answers with a certificate of the attacker's choosing."""

    def __init__(self, store: MemoryStore, tamper: str) -> None:
        self.real = ca.InProcessCA(store)
        self.store = store
        self.tamper = tamper

    def sign(self, mesh: str, service: str, csr_pem: bytes, ttl_seconds: float) -> bytes:
        if self.tamper == "service":
            return signed(self.store, "admin", ca.new_private_key())
        if self.tamper == "key":
            return signed(self.store, service, ca.new_private_key())
        other = MemoryStore()
        spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
        other.create(Resource(MESH, mesh, mesh, spec))
        return ca.sign_workload(other, mesh, service, csr_pem, ttl_seconds)  # another CA

    def mesh_ca(self, mesh: str) -> bytes:
        return self.real.mesh_ca(mesh)


@pytest.mark.parametrize("tamper", ["service", "key", "ca"])
def test_issue_identity_refuses_a_tampered_reply(store: MemoryStore, tamper: str) -> None:
    with pytest.raises(ca.CertificateReplyError):
        issue_identity(TamperingCA(store, tamper), MESH_NAME, "web", 3600, 80)
    assert issue_identity(ca.InProcessCA(store), MESH_NAME, "web", 3600, 80).service == "web"


def test_identity_manager_issues_nothing_and_retries(store: MemoryStore) -> None:
    due: list[str] = []

    async def run() -> set[str]:
        manager = IdentityManager(
            TamperingCA(store, "ca"),
            lifetime=3600,
            rotation_percent=80,
            on_due=due.append,
            retry_after=0.05,
        )
        changed = await manager.prepare(MESH_NAME, [("secure.web-1", "web")])
        assert manager.identity("secure.web-1") is None
        assert manager.issued == 0
        await asyncio.sleep(0.2)
        manager.close()
        return changed

    asyncio.run(run())
    assert MESH_NAME in due  # the existing retry logic takes over


# --- the worker's side: proofs ----------------------------------------------------------------

KEY = b"k" * 32
ARGS = [MESH_NAME, "web", "csr", 3600]


def test_a_valid_proof_binds_the_reply() -> None:
    verifier = ProofVerifier(lambda: KEY)
    proof = make_proof(KEY, "sign", ARGS)
    call = verifier.verify("sign", ARGS, proof)
    answer = call.reply("chain")
    assert answer["mac"] == reply_mac(KEY, proof["mac"], "chain")
    assert answer["mac"] != reply_mac(KEY, proof["mac"], "another chain")


@pytest.mark.parametrize(
    ("proof", "match"),
    [
        (None, "no proof"),
        ({"ts": 1, "nonce": "x"}, "malformed"),
        ("mac", "malformed"),
        (make_proof(b"w" * 32, "sign", ARGS), "MAC is wrong"),
        (make_proof(KEY, "sign", [MESH_NAME, "admin", "csr", 3600]), "MAC is wrong"),
        (make_proof(KEY, "sign", [*ARGS[:3], 10**9]), "MAC is wrong"),
        (make_proof(KEY, "mesh_ca", ARGS), "MAC is wrong"),
        (make_proof(KEY, "sign", ARGS, now=0), "timestamp"),
    ],
)
def test_forged_calls_are_refused(proof: object, match: str) -> None:
    with pytest.raises(WorkerAuthError, match=match):
        ProofVerifier(lambda: KEY).verify("sign", ARGS, proof)


def test_a_replayed_proof_is_refused() -> None:
    verifier = ProofVerifier(lambda: KEY)
    proof = make_proof(KEY, "sign", ARGS)
    verifier.verify("sign", ARGS, proof)
    with pytest.raises(WorkerAuthError, match="replay"):
        verifier.verify("sign", ARGS, proof)


def test_a_replaced_key_is_read_again() -> None:
    keys = [KEY]
    clock = [1000.0]
    verifier = ProofVerifier(lambda: keys[-1], clock=lambda: clock[0], reload_after=5)
    keys.append(b"n" * 32)
    new = make_proof(keys[-1], "sign", ARGS, now=clock[0])
    clock[0] += 10
    verifier.verify("sign", ARGS, new)
    with pytest.raises(WorkerAuthError, match="MAC is wrong"):  # the old key no longer works
        verifier.verify("sign", ARGS, make_proof(KEY, "sign", ARGS, now=clock[0]))
