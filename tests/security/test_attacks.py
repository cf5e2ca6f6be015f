"""Points 1-5 of issue 15, tried as an attacker would against real processes: `kuma-cp run` with
same-host trust off (so a client on this host stands for one on any other), an mTLS mesh, the
victim `default.web-1` behind a real Envoy with its token (see conftest.py). Each test ends by
checking that the victim still works: real traffic through it, its identity, its ADS stream and
exactly the listeners it had."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.ports import free_port
from tests.security.attacker import (
    CLUSTER,
    LISTENER,
    PREFIX,
    SECRET,
    TYPES,
    Attempt,
    Channel,
    Outcome,
    attack,
    call,
    delta_request,
    node,
    sotw_request,
)
from tests.security.conftest import Scene
from tests.security.harness import Dataplane

pytestmark = [pytest.mark.security, pytest.mark.envoy]

VICTIM = "default.web-1"
T = TypeVar("T")
SECRETS = ["identity_cert", "mesh_ca"]


def channels(scene: Scene) -> tuple[Channel, Channel]:
    """TLS channels to ADS (5678) and SDS (5677), trusting the certificate they present."""
    cp = scene.cp
    return Channel(f"127.0.0.1:{cp.xds_port}", cp.ca), Channel(f"127.0.0.1:{cp.sds_port}", cp.ca)


def refused(outcomes: dict[str, Outcome], code: str) -> None:
    """Every call ended with `code` and got nothing at all."""
    for what, outcome in outcomes.items():
        assert (outcome.code, outcome.responses) == (code, []), f"{what}: {outcome}"


def test_1_no_credential_gets_nothing(scene: Scene) -> None:
    """Issue point 1: a stream with no credential (or a forged one) claiming the victim's node
    id is refused before anything is sent, while the victim holds an identity to steal."""
    assert scene.victim.has_identity()
    ads, sds = channels(scene)
    refused(
        attack(
            {
                "ADS SotW secrets": call(ads, VICTIM, [sotw_request(SECRET, SECRETS)]),
                "ADS SotW listeners": call(ads, VICTIM, [sotw_request(LISTENER, [])]),
                "ADS delta secrets": call(
                    ads, VICTIM, [delta_request(SECRET, SECRETS)], kind="delta"
                ),
                "SDS": call(sds, VICTIM, [sotw_request(SECRET, SECRETS)], kind="sds"),
                "ADS, a forged token": call(ads, VICTIM, token="not.a.token"),
                "SDS, a forged token": call(sds, VICTIM, kind="sds", token="not.a.token"),
            }
        ),
        "UNAUTHENTICATED",
    )
    scene.check_victim()


def test_2_a_named_file_is_never_opened(scene: Scene, tmp_path: Path) -> None:
    """Issue point 2: node metadata `dataplaneTokenPath` naming the victim's token file (the
    user's, and kuma-dp's copy that Envoy reads), /dev/zero or a FIFO gets no one in; the FIFO
    is never opened, and a dataplane starting meanwhile gets its identity at once."""
    cp, victim = scene.cp, scene.victim
    ads, sds = channels(scene)
    files = [victim.token_file, victim.config_dir / "dataplane-token", Path("/dev/zero")]
    assert all(f.exists() for f in files)
    named = {
        f"{kind} naming {f}": call(
            channel, VICTIM, metadata={"dataplaneTokenPath": str(f)}, kind=kind
        )
        for f in files
        for kind, channel in (("sotw", ads), ("delta", ads), ("sds", sds))
    }
    refused(attack(named), "UNAUTHENTICATED")

    fifo = tmp_path / "token-fifo"
    os.mkfifo(fifo)
    fresh = Dataplane(cp, "fresh-1", f"127.0.0.1:{free_port()}:{free_port()}", "fresh")
    try:
        # The FIFO named by streams for the victim and for the dataplane about to start, each
        # waiting 8 s for an answer: a server stuck opening the FIFO would leave them OPEN.
        calls = {
            f"{kind} as {node_id}": call(
                channel, node_id, metadata={"dataplaneTokenPath": str(fifo)}, kind=kind, wait=8
            )
            for node_id in (VICTIM, "default.fresh-1")
            for kind, channel in (("sotw", ads), ("delta", ads), ("sds", sds))
        }
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(attack, calls)
            time.sleep(0.5)  # the FIFO is named before fresh-1 starts
            fresh.start()
            outcomes = pending.result()
        fresh.wait_ready(timeout=15)
        took = time.monotonic() - started
        refused(outcomes, "UNAUTHENTICATED")
        assert took < 15, f"fresh-1 took {took:.1f} s to get its identity"
    finally:
        # No process may have the FIFO open for reading (ENXIO); if one has (a regression),
        # let it go so that kuma-cp can stop.
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            opened = True
        except OSError as exc:
            opened = exc.errno != errno.ENXIO
        fresh.stop()
    assert not opened, "someone opened the FIFO a client named"
    scene.check_victim()


def test_3_another_dataplanes_token(scene: Scene) -> None:
    """Issue point 3 (first half): a valid token of another dataplane (a running one, one that
    does not exist, the victim's name in another mesh) claiming the victim's node id, or a stream
    bound to its own dataplane that names the victim later, is refused with PERMISSION_DENIED."""
    cp = scene.cp
    cp.apply({"type": "Mesh", "name": "other"})
    backend, mallory, elsewhere = (
        cp.token("backend-1"),
        cp.token("mallory"),
        cp.token("web-1", "other"),
    )
    ads, sds = channels(scene)

    def switch(kind: str) -> list[object]:
        """Bound as mallory first (asking for what it may have: the mesh CA), then naming the
        victim and asking for its identity."""
        make = delta_request if kind == "delta" else sotw_request
        first, later = make(SECRET, ["mesh_ca"]), make(SECRET, SECRETS)
        first.node.CopyFrom(node("default.mallory"))
        later.node.CopyFrom(node(VICTIM))
        return [first, later]

    outcomes = attack(
        {
            "ADS SotW, backend-1's token": call(ads, VICTIM, token=backend),
            "ADS delta, backend-1's token": call(ads, VICTIM, token=backend, kind="delta"),
            "SDS, backend-1's token": call(sds, VICTIM, token=backend, kind="sds"),
            "ADS SotW, a token of no dataplane": call(ads, VICTIM, token=mallory),
            "SDS, a token of no dataplane": call(sds, VICTIM, token=mallory, kind="sds"),
            "ADS, web-1 of mesh other": call(ads, VICTIM, token=elsewhere),
            "SDS, web-1 of mesh other": call(sds, VICTIM, token=elsewhere, kind="sds"),
            "ADS SotW, mallory then web-1": call(ads, "", switch("sotw"), token=mallory),
            "ADS delta, mallory then web-1": call(
                ads, "", switch("delta"), token=mallory, kind="delta"
            ),
            "SDS, mallory then web-1": call(sds, "", switch("sotw"), token=mallory, kind="sds"),
        }
    )
    # A stream bound to mallory (a valid token, no Dataplane) may get the mesh's public CA
    # before it names the victim: nothing of the victim's, and then it is cut.
    for what in [w for w in outcomes if w.endswith("then web-1")]:
        outcome = outcomes.pop(what)
        assert outcome.code == "PERMISSION_DENIED", f"{what}: {outcome}"
        secrets = [name for r in outcome.responses for name in r["secrets"]]
        assert outcome.private_keys == 0 and "identity_cert" not in secrets, f"{what}: {outcome}"
    refused(outcomes, "PERMISSION_DENIED")
    scene.check_victim()


def test_3_a_proxyless_impostor_leaves_the_victims_listeners(scene: Scene) -> None:
    """Issue point 3 (second half): streams claiming the victim with `dataplane.proxyless: true`
    (which would take its Envoy's listeners away) are refused; each holds on for 2 s, so that a
    hijack, were it accepted, would have reached the victim's Envoy; its listeners, versions and
    update times included, stay exactly as they were."""
    cp = scene.cp
    ads, _ = channels(scene)
    proxyless = {"dataplane.proxyless": True}
    tokens = {"no": "", "backend-1's": cp.token("backend-1"), "mallory's": cp.token("mallory")}
    impostors = {}
    for what, token in tokens.items():
        for kind, request in (
            ("sotw", sotw_request(LISTENER, [])),
            ("delta", delta_request(LISTENER, [])),
        ):
            impostors[f"{kind}, {what} token"] = call(
                ads, VICTIM, [request], token=token, metadata=proxyless, kind=kind, wait=2
            )
    outcomes = attack(impostors)
    for what, outcome in outcomes.items():
        expected = "UNAUTHENTICATED" if what.endswith("no token") else "PERMISSION_DENIED"
        assert (outcome.code, outcome.responses) == (expected, []), f"{what}: {outcome}"
    time.sleep(0.5)  # past the reconciler's debounce (50 ms): a hijack would be pushed by now
    scene.check_victim()


def test_4_plaintext_is_refused(scene: Scene) -> None:
    """Issue point 4: ADS and SDS speak only TLS. A plaintext client, even one holding a valid
    token, gets nothing (over TLS the same token is accepted); the victim's Envoy verifies the
    server with the CA it was given, and its token is nowhere in Envoy's /config_dump."""
    cp, victim = scene.cp, scene.victim
    ads, sds = channels(scene)
    token = victim.token_file.read_text().strip()
    mallory = cp.token("mallory")
    plain_ads = Channel(ads.address, plaintext=True)
    plain_sds = Channel(sds.address, plaintext=True)
    outcomes = attack(
        {
            "plaintext ADS, the victim's token": call(plain_ads, VICTIM, token=token),
            "plaintext ADS, no token": call(plain_ads, VICTIM),
            "plaintext SDS, the victim's token": call(plain_sds, VICTIM, token=token, kind="sds"),
            "TLS ADS, a valid token": call(ads, "default.mallory", token=mallory, wait=1),
        }
    )
    assert outcomes.pop("TLS ADS, a valid token").code == "OPEN"
    refused(outcomes, "UNAVAILABLE")
    for port in (cp.xds_port, cp.sds_port):
        assert not speaks_cleartext_http2(port), f"port {port} answered HTTP/2 in clear"

    import ssl

    assert ssl.get_server_certificate(("127.0.0.1", cp.sds_port)) == cp.ca  # one certificate
    dump = victim.admin("/config_dump")
    assert token not in dump
    bootstrap = next(c["bootstrap"] for c in json.loads(dump)["configs"] if "bootstrap" in c)
    ads_config = bootstrap["dynamic_resources"]
    google = ads_config["ads_config"]["grpc_services"][0]["google_grpc"]
    roots = google["channel_credentials"]["ssl_credentials"]["root_certs"]["inline_string"]
    assert roots.strip() == cp.ca.strip()
    scene.check_victim()


def speaks_cleartext_http2(port: int) -> bool:
    """Whether the port answers an HTTP/2 client preface sent in clear with a SETTINGS frame."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(preface)
        try:
            reply = s.recv(64)
        except OSError:
            return False
    return len(reply) >= 9 and reply[3] == 4  # frame type 4: SETTINGS


def names(count: int, size: int, salt: str = "") -> list[str]:
    """`count` distinct resource names of `size` characters."""
    return [f"{salt}-{i}-".ljust(size, "x") for i in range(count)]


def flood(scene: Scene, token: str) -> tuple[dict[str, Attempt], dict[str, str]]:
    """The issue's flood, many times over, all at once: the calls, and the code each must end
    with. Streams with no token sending 100 requests of 1 MB; streams with a (valid) token asking
    for 100 invented types of 1 MB each, for 10,001 names, for a name of 1,025 characters, in a
    5 MB message, or growing a delta subscription by 1,000 names per request. Each waits up to
    4 s: a stream that was not cut would hold what it sent meanwhile (1.4 GB in all)."""
    ads, sds = channels(scene)
    megabyte = names(1_000, 1_000)
    invented = [sotw_request(f"{PREFIX}attacker.Invented{i}", megabyte) for i in range(100)]
    growing = [delta_request(CLUSTER, names(1_000, 100, salt=str(i))) for i in range(40)]
    own = "default.mallory"
    calls: dict[str, Attempt] = {}
    expected: dict[str, str] = {}

    def add(what: str, code: str, *args: Any, **kw: Any) -> None:
        calls[what] = call(*args, wait=4, **kw)
        expected[what] = code

    for i in range(6):
        add(f"ADS, no token, 100 x 1 MB #{i}", "UNAUTHENTICATED", ads, VICTIM, invented)
        add(f"ADS, 100 invented types #{i}", "INVALID_ARGUMENT", ads, own, invented, token=token)
    for i in range(2):
        add(f"SDS, no token, 100 x 1 MB #{i}", "UNAUTHENTICATED", sds, VICTIM, invented, kind="sds")
    for i in range(3):
        too_many = [sotw_request(CLUSTER, names(10_001, 20))]
        add(f"ADS, 10,001 names #{i}", "RESOURCE_EXHAUSTED", ads, own, too_many, token=token)
        too_many = [sotw_request(SECRET, names(10_001, 20))]
        add(
            f"SDS, 10,001 names #{i}",
            "RESOURCE_EXHAUSTED",
            sds,
            own,
            too_many,
            token=token,
            kind="sds",
        )
        long = [sotw_request(CLUSTER, names(1, 1_025))]
        add(f"ADS, a 1,025-character name #{i}", "RESOURCE_EXHAUSTED", ads, own, long, token=token)
        huge = [sotw_request(CLUSTER, names(5_000, 1_000))]
        add(f"ADS, a 5 MB message #{i}", "RESOURCE_EXHAUSTED", ads, own, huge, token=token)
        add(
            f"ADS delta, 40 x 1,000 more names #{i}",
            "RESOURCE_EXHAUSTED",
            ads,
            own,
            growing,
            token=token,
            kind="delta",
        )
    return calls, expected


def peak_rss_kib(scene: Scene, work: Callable[[], T]) -> tuple[int, T]:
    """kuma-cp's highest resident memory (sampled every 50 ms) while `work` runs, and its result."""
    peak = [scene.cp.rss_kib()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak.append(scene.cp.rss_kib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        stop.set()
        sampler.join()
    return max(peak), result


def test_5_a_flood_is_cut_short_and_memory_stays_flat(scene: Scene) -> None:
    """Issue point 5: every call of the flood is closed (UNAUTHENTICATED, INVALID_ARGUMENT,
    RESOURCE_EXHAUSTED) with nothing sent back, and kuma-cp's memory stays flat however much a
    stream sends: at most what a stream may buffer before it is cut (its inbox of 8 requests)
    is held at once, about 130 MB for these 14 large streams, not the 1.4 GB they would hold
    uncut. The first round is a warm-up (gRPC's buffers and the allocator's arenas grow once,
    and stay)."""
    token = scene.cp.token("mallory")
    attack(flood(scene, token)[0])
    before = scene.cp.rss_kib()
    calls, expected = flood(scene, token)
    peak, outcomes = peak_rss_kib(scene, lambda: attack(calls))
    print(f"kuma-cp RSS: {before} KiB after the warm-up, {peak} KiB at the flood's peak")
    for what, outcome in outcomes.items():
        assert outcome.code == expected[what], f"{what}: {outcome}"
        assert outcome.private_keys == 0 and outcome.resources == 0, f"{what}: {outcome}"
    assert peak - before < 300 * 1024, f"kuma-cp grew from {before} to {peak} KiB"
    scene.check_victim()


def test_5_one_stream_holds_a_few_megabytes_at_most(scene: Scene) -> None:
    """Issue point 5 ("memory per stream stays bounded"): streams with a valid token that
    subscribe, on delta ADS, to as many names as the per-type caps allow (fewer than 10,000 per
    type, each under 1,025 characters, every message under 4 MB) for each of the five types
    (50 MB each) make kuma-cp hold at most 16 MB per stream while they stay open, or are cut
    with RESOURCE_EXHAUSTED. The largest real subscription, 10,000 services of Kuma's at most
    253-character names, is 2.5 MB."""
    token = scene.cp.token("mallory")
    ads, _ = channels(scene)
    requests = [
        delta_request(type_url, names(3_300, 1_000, salt=f"{type_url}{part}"))
        for type_url in TYPES
        for part in range(3)
    ]
    streams = 4
    before = scene.cp.rss_kib()
    release = threading.Event()
    with ThreadPoolExecutor(streams) as pool:
        held = [
            pool.submit(
                call(ads, "default.mallory", requests, token=token, kind="delta", until=release)
            )
            for _ in range(streams)
        ]
        try:
            # All read by then (about 200 MB), unless every stream was cut before.
            with contextlib.suppress(AssertionError):
                scene.cp.wait_until(lambda: all(f.done() for f in held), 8, "every stream cut")
            during = scene.cp.rss_kib()
            still_open = sum(not f.done() for f in held)
        finally:
            release.set()
        codes = [f.result().code for f in held]
    print(f"kuma-cp RSS: {before} KiB before, {during} KiB with {still_open} streams open")
    if still_open:
        grown = (during - before) / 1024 / still_open
        assert grown < 16, f"each open stream made kuma-cp hold {grown:.0f} MB: {codes}"
    else:  # cut: by the name budget (RESOURCE_EXHAUSTED), not by anything else
        assert set(codes) == {"RESOURCE_EXHAUSTED"}, codes
    scene.check_victim()


def test_5_streams_past_the_cap_are_refused_and_idle_ones_cut(scene: Scene) -> None:
    """Issue point 5 (streams per process, here xdsServer.maxStreams=64 and a 5 s first-request
    timeout): of 80 streams that never send a request, the oldest make room for newcomers once
    the process is full (RESOURCE_EXHAUSTED) and the others are cut at the timeout. Streams
    bound to a dataplane are never evicted: past the cap, a new one is refused."""
    ads, sds = channels(scene)
    idle = threading.Event()
    started = time.monotonic()
    try:
        outcomes = attack(
            {
                f"idle #{i}": call(ads, VICTIM, idle=True, until=idle)
                if i % 4
                else call(sds, VICTIM, idle=True, until=idle, kind="sds")
                for i in range(80)
            }
        )
    finally:
        idle.set()
    took = time.monotonic() - started
    codes = sorted(o.code for o in outcomes.values())
    assert set(codes) == {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}, codes
    assert codes.count("RESOURCE_EXHAUSTED") >= 80 - 64, codes
    assert took < 12, f"the idle streams were cut after {took:.1f} s (timeout 5 s)"

    token = scene.cp.token("mallory")
    bound = attack(
        {f"bound #{i}": call(ads, "default.mallory", token=token, wait=2) for i in range(70)}
    )
    codes = sorted(o.code for o in bound.values())
    assert set(codes) == {"OPEN", "RESOURCE_EXHAUSTED"}, codes
    assert codes.count("OPEN") <= 64 - 2, codes  # web-1 and backend-1 hold one each
    scene.check_victim()


def test_5_idle_streams_without_a_credential_lock_out_no_dataplane(scene: Scene) -> None:
    """Issue point 5 with "cannot get the real dataplane refused": streams that carry no
    credential and send nothing fill every stream slot (their first-request timeout is 5 s
    here); once the server is full (it starts ending some of them with RESOURCE_EXHAUSTED),
    a dataplane with a valid token must still be served."""
    ads, _ = channels(scene)
    idle = threading.Event()
    token = scene.cp.token("mallory")
    with ThreadPoolExecutor(70) as pool:
        held = [pool.submit(call(ads, VICTIM, idle=True, until=idle)) for _ in range(70)]
        try:
            scene.cp.wait_until(
                lambda: any(f.done() and f.result().code == "RESOURCE_EXHAUSTED" for f in held),
                4,
                "the server full of idle streams",
            )
            outcome = call(ads, "default.mallory", token=token, wait=1)()
        finally:
            idle.set()
    assert outcome.code == "OPEN", f"a dataplane with a valid token was refused: {outcome}"
    scene.check_victim()


def test_5_bodies_nested_thousands_deep_are_bad_requests(scene: Scene) -> None:
    """Issue point 5 for what an HTTP client sends: JSON (or a ProxyTemplate's raw YAML) nested
    thousands of levels deep, which Python's parsers recurse through, is refused as malformed
    with a 400 in Kuma's error shape (it was a RecursionError: a 500 and a traceback), and
    nothing is stored."""
    cp = scene.cp
    deep = "[" * 5000 + "]" * 5000
    mesh = f'{{"type": "Mesh", "name": "deep", "extra": {deep}}}'
    cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    raw = f'{{"@type": "{cluster}", "name": "c", "x": {deep}}}'
    template = {
        "type": "ProxyTemplate",
        "mesh": "default",
        "name": "deep",
        "conf": {"resources": [{"name": "r", "version": "1", "resource": raw}]},
    }
    headers = {"Content-Type": "application/json"}
    answers = {
        "Mesh": cp.http.put(f"{cp.api}/meshes/deep", data=mesh, headers=headers, timeout=10),
        "ProxyTemplate": cp.http.put(
            f"{cp.api}/meshes/default/proxytemplates/deep", json=template, timeout=10
        ),
        "bootstrap": cp.http.post(
            f"http://127.0.0.1:{cp.bootstrap_port}/bootstrap",
            data=f'{{"mesh": "default", "name": {deep}}}',
            headers=headers,
            timeout=10,
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 400, f"{what}: {answer.status_code} {answer.text[:200]}"
        assert answer.json()["title"], what
    assert "nested deeper than 100 levels" in answers["Mesh"].json()["details"]
    assert "nested deeper than 100 levels" in answers["ProxyTemplate"].text
    assert cp.http.get(f"{cp.api}/meshes/deep", timeout=5).status_code == 404
    assert cp.http.get(f"{cp.api}/meshes/default/proxytemplates/deep", timeout=5).status_code == 404
    scene.check_victim()
