"""Token lifetimes and key rotation with real processes (issue "Trust at the edges"): `kuma-cp run`
on Postgres with same-host trust off, tokens from its API, the bootstrap (HTTP, 5682) and ADS
(gRPC over TLS, 5678) as a dataplane meets them, and `kuma-cp rotate-token-key` /
`retire-token-key` as separate processes against the same store.

- an expired token is refused at bootstrap (401) and at ADS stream open (UNAUTHENTICATED);
- after a rotation, tokens of the old and the new key both work; after retirement only new ones;
- the public-key record verifiers read holds no private key."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import grpc
import jwt
import requests
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from kuma import tokens
from kuma.resources.registry import SECRET
from tests.conftest import pg_env
from tests.security.harness import BIN, ControlPlane, Processes

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
NODE = "default.dp-1"


def bootstrap(cp: ControlPlane, token: str) -> requests.Response:
    body = {"mesh": "default", "name": "dp-1", "dataplaneToken": token}
    return requests.post(f"http://127.0.0.1:{cp.bootstrap_port}/bootstrap", json=body, timeout=10)


async def _open_stream(cp: ControlPlane, token: str) -> tuple[int, grpc.StatusCode | None, str]:
    """Open an ADS stream as dp-1 with `token`: (responses within 3 s, status if it ended)."""
    credentials = grpc.ssl_channel_credentials(cp.ca.encode())
    options = [("grpc.ssl_target_name_override", "localhost")]
    async with grpc.aio.secure_channel(f"127.0.0.1:{cp.xds_port}", credentials, options) as ch:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch).StreamAggregatedResources(
            metadata=(("authorization", f"Bearer {token}"),)
        )
        request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        request.node.id = NODE
        await call.write(request)
        got = 0
        try:
            async with asyncio.timeout(3):
                async for _ in call:
                    got += 1
        except TimeoutError:
            call.cancel()
            return got, None, ""
        except grpc.aio.AioRpcError as exc:
            return got, exc.code(), exc.details() or ""
        return got, await call.code(), await call.details()


def ads(cp: ControlPlane, token: str) -> tuple[int, grpc.StatusCode | None, str]:
    return asyncio.run(_open_stream(cp, token))


def assert_accepted(cp: ControlPlane, token: str) -> None:
    answer = bootstrap(cp, token)
    assert answer.status_code == 200, answer.text
    got, code, details = ads(cp, token)
    assert code is None and got >= 1, (code, details)  # bound, config sent, still open


def assert_refused(cp: ControlPlane, token: str, reason: str) -> None:
    answer = bootstrap(cp, token)
    assert answer.status_code == 401 and reason in answer.json()["details"], answer.text
    got, code, details = ads(cp, token)
    assert (got, code) == (0, grpc.StatusCode.UNAUTHENTICATED) and reason in details, details


def kuma_cp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kuma-cp"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_expiry_and_rotation_with_real_processes(tmp_path: Path, own_pg_database):
    from kuma.store import PostgresStore

    procs = Processes(tmp_path)
    cp = ControlPlane(
        procs,
        KUMA_GENERAL_TRUST_LOOPBACK="false",
        KUMA_STORE_MIGRATE_ON_START="true",
        **pg_env(own_pg_database),
    )
    cp.start()
    store = PostgresStore(" ".join(f"{k}={v}" for k, v in own_pg_database.items()))
    try:
        cp.apply(
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": "dp-1",
                "networking": {
                    "inbound": [{"interface": "127.0.0.1:9000:9001", "tags": {"service": "web"}}]
                },
            }
        )
        answer = cp.http.post(
            cp.api + "/tokens", json={"mesh": "default", "name": "dp-1", "validFor": "1s"}
        )
        assert answer.status_code == 200, answer.text
        short = answer.text
        old = cp.token("dp-1")  # the default lifetime: a year
        year = jwt.decode(old, options={"verify_signature": False})
        assert year["exp"] - year["iat"] == 365 * 24 * 3600
        assert_accepted(cp, old)

        # expired: refused at bootstrap and at stream open
        time.sleep(max(0.0, jwt.decode(short, options={"verify_signature": False})["exp"] + 1.1
                       - time.time()))  # fmt: skip
        assert_refused(cp, short, "expired")

        # rotation: another process adds a key; both generations work
        rotated = kuma_cp(cp.env, "rotate-token-key")
        assert rotated.returncode == 0, rotated.stderr
        new = cp.token("dp-1")
        assert kid(new) != kid(old) and kid(new) in rotated.stdout
        assert_accepted(cp, new)
        assert_accepted(cp, old)

        # the record verifiers read: public halves only
        record = store.get(SECRET, tokens.SIGNING_KEY_MESH, tokens.PUBLIC_KEYS_NAME)
        data = bytes(record.spec.data)
        jwks = json.loads(data)["keys"]
        assert [k["kid"] for k in jwks] == [kid(old), kid(new)]
        assert all(set(k) >= {"kty", "crv", "x", "kid"} and "d" not in k for k in jwks)
        private = store.get(SECRET, tokens.SIGNING_KEY_MESH, tokens.SIGNING_KEY_NAME)
        signing = tokens.ensure_signing_key(store)
        assert tokens.key_id(signing) == kid(new)
        raw_private = signing.private_bytes_raw()
        assert raw_private not in data and tokens._b64url(raw_private).encode() not in data
        assert bytes(private.spec.data) not in data

        # retirement: from then on (within the verifiers' key cache) only the new key's tokens
        retired = kuma_cp(cp.env, "retire-token-key")
        assert retired.returncode == 0, retired.stderr
        assert f"retired: {kid(old)}" in retired.stdout
        time.sleep(tokens.KEY_CACHE_SECONDS + 0.5)
        assert_refused(cp, old, "unknown or retired")
        assert_accepted(cp, new)
    except BaseException:
        print(procs.logs())
        raise
    finally:
        store.close()
        procs.stop_all()
