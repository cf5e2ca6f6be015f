"""Issue 15, point 6: with same-host trust on (the default), an attacker on another host (a
network namespace) with no token, who opens streams for node X first, must not get X's real
local Envoy refused; X, served without a token because it is on the control plane's host, keeps
working, and the remote attacker gets nothing of X's. kuma-cp listens on 0.0.0.0, so the
attacker dials the host's end of the veth pair and is seen from the namespace's address."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Netns, network_namespace
from tests.ports import free_port
from tests.security.attacker import LISTENER
from tests.security.conftest import WebAndBackend
from tests.security.harness import (
    ROOT,
    ControlPlane,
    Dataplane,
    Processes,
    clean_env,
)

pytestmark = [pytest.mark.security, pytest.mark.envoy]

VICTIM = "default.web-1"


class RemoteAttacker:
    """tests/security/attacker.py run inside the namespace: one JSON line per call as it ends;
    its `idle` calls are held open until `release()`."""

    def __init__(self, ns: Netns, log: Path, spec: dict[str, Any]):
        self.proc = ns.popen(
            [sys.executable, "-m", "tests.security.attacker", json.dumps(spec)],
            env=clean_env(),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
        )
        self.outcomes: dict[int, dict[str, Any]] = {}
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            outcome = json.loads(line)
            with self._lock:
                self.outcomes[outcome["call"]] = outcome
                self._lock.notify_all()

    def wait_for(self, calls: list[int], timeout: float = 20) -> dict[int, dict[str, Any]]:
        with self._lock:
            done = self._lock.wait_for(lambda: all(c in self.outcomes for c in calls), timeout)
        assert done, f"the attacker reported {sorted(self.outcomes)} of {calls} in {timeout} s"
        return {c: self.outcomes[c] for c in calls}

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class FirstImpostor(WebAndBackend):
    procs: Processes
    ns: Netns
    cp: ControlPlane
    probe_token: str

    def spec(self, idle: bool) -> dict[str, Any]:
        """What the attacker tries, each with no token, as the victim: its identity over ADS
        and SDS, its listeners as a proxyless impostor; with `idle`, also a stream that sends
        nothing and stays open. Last, a control: the same client with a valid token (of
        probe-1, a Dataplane with no Envoy) is served from the namespace."""
        host = self.ns.host_ip
        calls: list[dict[str, Any]] = [
            {"node": VICTIM, "names": ["identity_cert", "mesh_ca"]},
            {"node": VICTIM, "kind": "sds", "address": f"{host}:{self.cp.sds_port}"},
            {
                "node": VICTIM,
                "type_url": LISTENER,
                "names": [],
                "metadata": {"dataplane.proxyless": True},
            },
            {"node": VICTIM, "kind": "delta"},
            {"node": "default.probe-1", "token": self.probe_token, "wait": 2},
        ]
        if idle:
            calls.append({"node": VICTIM, "idle": True})
        return {"address": f"{host}:{self.cp.xds_port}", "ca": self.cp.ca, "calls": calls}

    def attack(self, idle: bool = False) -> tuple[RemoteAttacker, dict[int, dict[str, Any]]]:
        attacker = RemoteAttacker(self.ns, self.procs.workdir / "attacker.log", self.spec(idle))
        outcomes = attacker.wait_for(list(range(5)))
        for i in range(4):
            outcome = outcomes[i]
            assert (outcome["code"], outcome["responses"]) == ("UNAUTHENTICATED", []), outcome
        control = outcomes[4]
        assert control["code"] == "OPEN", control
        keys = sum(r["private_keys"] for r in control["responses"])
        assert keys == 1, f"the control got no identity of its own: {control}"
        return attacker, outcomes


@pytest.fixture(scope="module")
def first_impostor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstImpostor]:
    with network_namespace() as ns:
        procs = Processes(tmp_path_factory.mktemp("first-impostor"))
        try:
            cp = ControlPlane(procs)  # general.trustLoopback: on, the default
            cp.start()
            pair = WebAndBackend.register(cp)
            Dataplane(cp, "probe-1", f"127.0.0.1:{free_port()}:{free_port()}", "probe")
            yield FirstImpostor(
                **vars(pair), procs=procs, ns=ns, cp=cp, probe_token=cp.token("probe-1")
            )
        except BaseException:
            print(procs.logs())
            raise
        finally:
            procs.stop_all()


def test_6_a_remote_impostor_first_does_not_get_the_local_envoy_refused(
    first_impostor: FirstImpostor,
) -> None:
    scene = first_impostor
    attacker, _ = scene.attack(idle=True)  # first: web-1 has no Envoy yet
    try:
        # While the impostor's idle stream is still open, web-1's real Envoy starts on this
        # host with no token (same-host trust) and must be served in full.
        scene.victim.start(token=False)
        scene.client.start(token=False)
        scene.victim.wait_ready()
        scene.client.wait_ready()
        scene.cp.wait_until(lambda: scene.through_mesh() == "web-1", 30, "web-1 through the mesh")
        assert attacker.outcomes.get(5) is None, "the idle stream was closed early"
    finally:
        attacker.release()
    assert attacker.outcomes[5]["code"] == "OPEN", attacker.outcomes[5]

    # Again, now that web-1 runs: still nothing for the attacker, and web-1 unmoved.
    baseline = scene.victim.listeners()
    again, _ = scene.attack()
    again.release()
    assert scene.through_mesh() == "web-1"
    assert scene.victim.has_identity()
    assert scene.victim.listeners() == baseline, "web-1's listeners changed"
