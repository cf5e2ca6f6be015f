"""The injector as compose runs it: `kuma-injector` under gunicorn with TLS on 8443 (here
127.0.0.6), its certificate made by `kumactl generate tls-certificate` (compose's `certs` step),
asking the split API whether a Pod's Mesh exists."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonpatch
import pytest
import requests

from tests.injector.conftest import admission_review, pod, validate_pod
from tests.integration.test_split_topology import kumactl
from tests.integration.topology import API, BIN, Topology
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

INJECTOR_HOST = "127.0.0.6"
INJECTOR = f"https://{INJECTOR_HOST}:8443"


def test_injector_behind_the_split_api(topology: Topology, tmp_path: Path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    kumactl(
        tmp_path,
        *("generate", "tls-certificate", "--type", "server", "--cp-hostname", INJECTOR_HOST),
        *("--key-file", str(key), "--cert-file", str(cert)),
    )
    topology.start(
        "injector",
        [str(BIN / "kuma-injector"), "run"],  # Kuma's form
        KUMA_INJECTOR_WEBHOOK_SERVER_ADDRESS=INJECTOR_HOST,
        KUMA_INJECTOR_WEBHOOK_SERVER_PORT="8443",
        KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR=str(tmp_path),
        KUMA_INJECTOR_CONTROL_PLANE_API_SERVER_URL=API,
        KUMA_INJECTOR_WORKERS="1",
    )
    wait_until(
        lambda: requests.get(f"{INJECTOR}/healthy", verify=str(cert), timeout=2).ok,
        30,
        "the injector over TLS",
    )

    def review(annotations: dict[str, str]) -> tuple[dict, dict]:
        sent = admission_review(pod(annotations=annotations))
        answer = requests.post(
            f"{INJECTOR}/inject-sidecar", json=sent, verify=str(cert), timeout=10
        ).json()
        assert answer["response"]["uid"] == sent["request"]["uid"]
        return sent, answer["response"]

    sent, response = review({"kuma.io/sidecar-injection": "enabled"})
    assert response["allowed"] is True
    patch = json.loads(base64.b64decode(response["patch"]))
    injected = jsonpatch.apply_patch(sent["request"]["object"], patch)
    assert [c["name"] for c in injected["spec"]["containers"]] == ["app", "kuma-sidecar"]
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["kuma-init"]
    validate_pod(injected)

    # A Mesh the split API does not have: refused whole, with the reason.
    _, response = review({"kuma.io/sidecar-injection": "enabled", "kuma.io/mesh": "nope"})
    assert response["allowed"] is False and "patch" not in response
    assert "mesh 'nope' does not exist" in response["status"]["message"]
