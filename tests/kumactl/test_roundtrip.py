"""kumactl against a real `kuma-cp run`: apply, get, inspect, delete, errors, paging, tokens."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from cli.kumactl import cmd_inspect
from tests.ca_certs import write_ca
from tests.kumactl.conftest import (
    Canned,
    ControlPlane,
    Kumactl,
    free_port,
    start_control_plane,
    stop_control_plane,
    use,
)

pytestmark = pytest.mark.slow

MESHES = """\
type: Mesh
name: mesh2
mtls:
  ca:
    provided: {}
metrics:
  prometheus: {}
---
type: Mesh
name: mesh1
mtls:
  enabled: true
"""


def resources(mesh: str) -> str:
    return f"""\
type: Mesh
name: {mesh}
---
type: Dataplane
mesh: {mesh}
name: {{{{name}}}}
networking:
  inbound:
  - interface: 127.0.0.1:10000:9000
    tags:
      service: backend
      version: "{{{{version}}}}"
---
type: Dataplane
mesh: {mesh}
name: web
networking:
  inbound:
  - interface: 127.0.0.1:10001:9001
    tags:
      service: web
---
type: TrafficPermission
mesh: {mesh}
name: allow-web
sources:
- match:
    service: web
destinations:
- match:
    service: backend
"""


def test_get_meshes_matches_the_spec_example(
    kumactl: Kumactl, fresh_cp: ControlPlane, tmp_path: Path
):
    use(kumactl, fresh_cp)
    # A Mesh with the provided CA needs its signing certificate first (spec §3.4).
    cert_file, key_file = write_ca(tmp_path)
    added = kumactl(
        "--mesh", "mesh2", "manage", "ca", "provided", "certificates", "add",
        "--cert-file", str(cert_file), "--key-file", str(key_file),
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    result = kumactl("apply", input=MESHES)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert kumactl("get", "meshes").stdout == (
        "NAME      mTLS   CA         METRICS\n"
        "default   off    builtin    off\n"
        "mesh1     on     builtin    off\n"
        "mesh2     off    provided   prometheus\n"
    )
    result = kumactl("get", "mesh", "mesh2", "-o", "json")
    assert result.stdout == (
        "{\n"
        '  "metrics": {\n'
        '    "prometheus": {\n'
        '      "port": 5670,\n'
        '      "path": "/metrics"\n'
        "    }\n"
        "  },\n"
        '  "mtls": {\n'
        '    "ca": {\n'
        '      "provided": {}\n'
        "    }\n"
        "  },\n"
        '  "name": "mesh2",\n'
        '  "type": "Mesh"\n'
        "}\n"
    )
    assert kumactl("get", "mesh", "nope").stderr == "Error: No resources found\n"
    assert kumactl("get", "meshes", "-o", "xml").stderr == 'Error: unknown output format "xml"\n'


def test_apply_get_delete(kumactl: Kumactl, any_cp: ControlPlane):
    use(kumactl, any_cp)
    result = kumactl("apply", "-v", "name=backend-1", "-v", "version=v1", input=resources("rt"))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")

    assert kumactl("--mesh", "rt", "get", "dataplanes").stdout == (
        "MESH   NAME        TAGS\n"
        "rt     backend-1   service=backend version=v1\n"
        "rt     web         service=web\n"
    )
    assert kumactl("--mesh", "rt", "get", "traffic-permissions").stdout == (
        "MESH   NAME\nrt     allow-web\n"
    )
    for plural in ("healthchecks", "proxytemplates", "traffic-routes", "traffic-logs"):
        assert kumactl("--mesh", "rt", "get", plural).stdout == "MESH   NAME\n"
    assert kumactl("--mesh", "rt", "get", "traffic-permissions", "-o", "yaml").stdout == (
        "items:\n"
        "- destinations:\n"
        "  - match:\n"
        "      service: backend\n"
        "  mesh: rt\n"
        "  name: allow-web\n"
        "  sources:\n"
        "  - match:\n"
        "      service: web\n"
        "  type: TrafficPermission\n"
    )
    single = json.loads(kumactl("--mesh", "rt", "get", "dataplane", "web", "-o", "json").stdout)
    assert single["name"] == "web" and single["type"] == "Dataplane"
    result = kumactl("--mesh", "rt", "get", "dataplane", "ghost")
    assert result.stderr == "Error: No resources found in rt mesh\n"

    # apply again: an update, still silent
    result = kumactl("apply", "-v", "name=backend-1", "-v", "version=v2", input=resources("rt"))
    assert (result.exit_code, result.stdout) == (0, "")
    assert "version=v2" in kumactl("--mesh", "rt", "get", "dataplanes").stdout

    assert kumactl("--mesh", "rt", "delete", "dataplane", "web").stdout == (
        'deleted Dataplane "web"\n'
    )
    result = kumactl("--mesh", "rt", "delete", "dataplane", "web")
    assert (result.exit_code, result.stderr) == (
        1,
        'Error: there is no Dataplane with name "web"\n',
    )
    assert kumactl("delete", "mesh", "rt").stdout == 'deleted Mesh "rt"\n'
    assert kumactl("--mesh", "rt", "get", "dataplanes").stdout == "MESH   NAME   TAGS\n"


def test_delete_argument_errors(kumactl: Kumactl):
    assert kumactl("delete", "mesh").stderr == "Error: accepts 2 arg(s), received 1\n"
    assert kumactl("delete", "pod", "x").stderr == (
        "Error: unknown TYPE: pod. Allowed values: mesh, dataplane, healthcheck, proxytemplate, "
        "traffic-log, traffic-permission, traffic-route\n"
    )


def test_api_errors_are_rendered(kumactl: Kumactl, any_cp: ControlPlane):
    use(kumactl, any_cp)
    dataplane = resources("ghost-mesh").split("---\n")[1]
    result = kumactl("apply", "-v", "name=a", "-v", "version=v1", input=dataplane)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: Could not create a resource (Mesh is not found)\n"
        "* mesh: mesh of name ghost-mesh is not found\n",
    )
    # several documents: which one failed, and which were applied before it
    text = "type: Mesh\nname: partial\n---\n" + dataplane
    result = kumactl("apply", "-v", "name=a", "-v", "version=v1", input=text)
    assert result.stderr == (
        'Error: document 2 (Dataplane "a"): Could not create a resource (Mesh is not found)\n'
        "* mesh: mesh of name ghost-mesh is not found\n"
        "documents applied before the failure: 1\n"
    )


def test_transport_and_plain_http_errors(
    kumactl: Kumactl, stub_server: tuple[str, Canned], tmp_path
):
    url, canned = stub_server
    canned.body = b'{"tagline": "Kuma"}'
    use(kumactl, ControlPlane(url, 0, None))  # type: ignore[arg-type]
    canned.status, canned.body = 500, b"boom"
    assert kumactl("get", "meshes").stderr == "Error: failed to list Meshes: (500): boom\n"
    assert kumactl("get", "traffic-logs").stderr == (
        "Error: failed to list TrafficLog: (500): boom\n"
    )

    port = free_port()
    dead = tmp_path / "dead.yaml"
    dead.write_text(
        f"controlPlanes:\n- name: d\n  coordinates: {{apiServer: {{url: 'http://127.0.0.1:{port}'}}}}\n"
        "contexts:\n- {name: d, controlPlane: d}\ncurrentContext: d\n"
    )
    result = kumactl("--config-file", str(dead), "get", "healthchecks")
    assert result.stderr == (
        "Error: failed to list HealthChecks: "
        f'Get "http://127.0.0.1:{port}/meshes/default/health-checks": connection refused\n'
    )


def test_inspect_dataplanes(kumactl: Kumactl, any_cp: ControlPlane, monkeypatch):
    use(kumactl, any_cp)
    assert (
        kumactl("apply", "-v", "name=b1", "-v", "version=v1", input=resources("insp")).exit_code
        == 0
    )
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    insight = {
        "type": "DataplaneInsight",
        "mesh": "insp",
        "name": "b1",
        "subscriptions": [
            {
                "id": "s1",
                "controlPlaneInstanceId": "cp-1",
                "connectTime": (now - timedelta(hours=2, minutes=3, seconds=4)).isoformat(),
                "status": {
                    "lastUpdateTime": (now - timedelta(seconds=5)).isoformat(),
                    "total": {"responsesSent": "7", "responsesRejected": "1"},
                },
            }
        ],
    }
    put = requests.put(f"{any_cp.url}/meshes/insp/dataplane-insights/b1", json=insight, timeout=10)
    assert put.status_code == 201, put.text
    monkeypatch.setattr(cmd_inspect, "now", lambda: now)
    assert kumactl("--mesh", "insp", "inspect", "dataplanes").stdout == (
        "MESH   NAME   TAGS                         STATUS    LAST CONNECTED AGO   "
        "LAST UPDATED AGO   TOTAL UPDATES   TOTAL ERRORS\n"
        "insp   b1     service=backend version=v1   Online    2h3m4s               "
        "5s                 7               1\n"
        "insp   web    service=web                  Offline   never                "
        "never              0               0\n"
    )
    filtered = kumactl("--mesh", "insp", "inspect", "dataplanes", "--tag", "service=web")
    assert filtered.stdout.splitlines()[1:] == [
        "insp   web    service=web   Offline   never                never              0"
        "               0"
    ]
    data = json.loads(kumactl("--mesh", "insp", "inspect", "dataplanes", "-o", "json").stdout)
    assert [list(item) for item in data["items"]] == [
        ["dataplane", "dataplaneInsight", "mesh", "name", "type"],
        ["dataplane", "mesh", "name", "type"],
    ]
    result = kumactl("inspect", "dataplanes", "--tag", "oops")
    assert result.stderr == (
        'Error: invalid argument "oops" for "--tag" flag: oops must be formatted as key=value\n'
    )


def test_inspect_keeps_a_status_with_empty_stats(kumactl: Kumactl, any_cp: ControlPlane):
    """protobuf-JSON writes a set message field even when it is empty: Kuma's `status` with
    zero counters comes back as it went in, through the API and `inspect -o yaml|json`."""
    use(kumactl, any_cp)
    assert (
        kumactl("apply", "-v", "name=e1", "-v", "version=v1", input=resources("empty")).exit_code
        == 0
    )
    status = {"total": {}, "cds": {}, "eds": {}, "lds": {}, "rds": {}}
    subscription = {"id": "s1", "controlPlaneInstanceId": "cp-1", "status": status}
    insight = {
        "type": "DataplaneInsight",
        "mesh": "empty",
        "name": "e1",
        "subscriptions": [subscription],
    }
    url = f"{any_cp.url}/meshes/empty/dataplane-insights/e1"
    assert requests.put(url, json=insight, timeout=10).status_code == 201
    assert requests.get(url, timeout=10).json()["subscriptions"] == [subscription]
    data = json.loads(kumactl("--mesh", "empty", "inspect", "dataplanes", "-o", "json").stdout)
    [overview] = [item for item in data["items"] if item["name"] == "e1"]
    assert overview["dataplaneInsight"] == {"subscriptions": [subscription]}
    text = kumactl("--mesh", "empty", "inspect", "dataplanes", "-o", "yaml").stdout
    assert yaml.safe_load(text)["items"][0]["dataplaneInsight"] == {"subscriptions": [subscription]}
    assert (  # YAML keys sorted, as Kuma's (ghodss/yaml)
        "      status:\n        cds: {}\n        eds: {}\n        lds: {}\n        rds: {}\n"
        "        total: {}\n" in text
    )


def test_inspect_meshes_counts_from_the_mesh_insights(kumactl: Kumactl, any_cp: ControlPlane):
    use(kumactl, any_cp)
    resources_yaml = resources("inspm")
    assert (
        kumactl("apply", "-v", "name=b1", "-v", "version=v1", input=resources_yaml).exit_code == 0
    )
    online = {
        "type": "DataplaneInsight",
        "mesh": "inspm",
        "name": "b1",
        "subscriptions": [{"id": "s1", "connectTime": "2024-05-01T12:00:00Z"}],
    }
    put = requests.put(f"{any_cp.url}/meshes/inspm/dataplane-insights/b1", json=online, timeout=10)
    assert put.status_code == 201, put.text
    table = kumactl("inspect", "meshes").stdout.splitlines()
    assert " ".join(table[0].split()) == (
        "NAME DATAPLANES TRAFFIC PERMISSIONS TRAFFIC ROUTES TRAFFIC LOGS HEALTH CHECKS"
        " PROXY TEMPLATES"
    )
    row = next(line for line in table if line.startswith("inspm "))
    assert row.split() == ["inspm", "1/2", "1", "0", "0", "0", "0"]
    data = json.loads(kumactl("inspect", "meshes", "-o", "json").stdout)
    mine = next(i for i in data["items"] if i["name"] == "inspm")
    assert mine["dataplanes"] == {"total": 2, "online": 1, "offline": 1}


INSPECTED = """\
type: Mesh
name: inspd
---
type: Dataplane
mesh: inspd
name: web-1
networking:
  inbound:
  - interface: 127.0.0.1:10002:9002
    tags:
      service: web
  outbound:
  - interface: :10003
    service: backend
---
type: TrafficPermission
mesh: inspd
name: backend-to-web
sources:
- match:
    service: backend
destinations:
- match:
    service: web
---
type: TrafficRoute
mesh: inspd
name: web-to-backend
sources:
- match:
    service: web
destinations:
- match:
    service: backend
conf:
- weight: 100
  destination:
    service: backend
    version: v2
---
type: HealthCheck
mesh: inspd
name: backend-checks
sources:
- match:
    service: '*'
destinations:
- match:
    service: backend
conf:
  passiveChecks:
    unhealthyThreshold: 3
    penaltyInterval: 5s
"""


def test_inspect_dataplane_prints_the_policies_that_select_it(
    kumactl: Kumactl, any_cp: ControlPlane
):
    """Kuma 1.x's `kumactl inspect dataplane`, from GET .../dataplanes/{name}/policies: the
    same answer the GUI's dataplane page shows."""
    use(kumactl, any_cp)
    assert kumactl("apply", input=INSPECTED).exit_code == 0
    result = kumactl("--mesh", "inspd", "inspect", "dataplane", "web-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "INBOUND 127.0.0.1:10002:9002(web):\n"
        "  TrafficPermission\n"
        "    backend-to-web\n"
        "\n"
        "OUTBOUND :10003(backend):\n"
        "  TrafficRoute\n"
        "    web-to-backend\n"
        "\n"
        "SERVICE backend:\n"
        "  HealthCheck\n"
        "    backend-checks\n"
    )
    data = yaml.safe_load(
        kumactl("--mesh", "inspd", "inspect", "dataplane", "web-1", "-o", "yaml").stdout
    )
    path = f"{any_cp.url}/meshes/inspd/dataplanes/web-1/policies"
    assert data == requests.get(path, timeout=10).json()
    missing = kumactl("--mesh", "inspd", "inspect", "dataplane", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == "Error: No resources found in inspd mesh\n"


def test_lists_are_fetched_page_by_page(kumactl: Kumactl, any_cp: ControlPlane):
    use(kumactl, any_cp)
    count = 1234  # more than one page of 1000
    session = requests.Session()
    assert session.put(f"{any_cp.url}/meshes/paged", json={"type": "Mesh", "name": "paged"})
    for i in range(count):
        body = {
            "type": "Dataplane",
            "mesh": "paged",
            "name": f"dp-{i:05d}",
            "networking": {"inbound": [{"interface": "1.1.1.1:1:2", "tags": {"service": "s"}}]},
        }
        r = session.put(f"{any_cp.url}/meshes/paged/dataplanes/dp-{i:05d}", json=body)
        assert r.status_code == 201
    started = time.perf_counter()
    lines = kumactl("--mesh", "paged", "get", "dataplanes").stdout.splitlines()
    elapsed = time.perf_counter() - started
    assert len(lines) == count + 1
    assert lines[-1] == f"paged   dp-{count - 1:05d}   service=s"
    assert elapsed < 30
    overview = kumactl("--mesh", "paged", "inspect", "dataplanes", "-o", "json").stdout
    assert len(json.loads(overview)["items"]) == count


def test_writes_not_trusted_by_host_carry_the_auth_token(kumactl: Kumactl):
    # Same-host trust off: this host's kumactl is treated as any other host's.
    cp = start_control_plane(
        {"KUMA_API_SERVER_ADMIN_TOKEN": "tok-123", "KUMA_GENERAL_TRUST_LOOPBACK": "false"}
    )
    try:
        use(kumactl, cp)
        result = kumactl("apply", input="type: Mesh\nname: guarded\n")
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: Unauthorized (")
        use(kumactl, cp, "--overwrite", "--auth-token", "tok-123")
        result = kumactl("apply", input="type: Mesh\nname: guarded\n")
        assert (result.exit_code, result.stderr) == (0, "")
        assert kumactl("delete", "mesh", "guarded").stdout == 'deleted Mesh "guarded"\n'
    finally:
        stop_control_plane(cp)


def test_dataplane_token(kumactl: Kumactl, shared_cp: ControlPlane, stub_server):
    import jwt

    use(kumactl, shared_cp)
    result = kumactl("generate", "dataplane-token", "--dataplane", "dp-1")
    assert result.exit_code == 0, result.stderr
    token = result.stdout
    assert token and not token.endswith("\n")
    # The control plane signed a token naming dp-1 in mesh default (the signature is checked
    # by the bootstrap and SDS tests, which hold the key).
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["Mesh"], claims["Name"]) == ("default", "dp-1")
    url, canned = stub_server
    canned.body = b'{"tagline": "Kuma"}'
    kumactl("config", "control-planes", "add", "--name", "stub", "--address", url)
    canned.body = b"eyJhbGciOi.token.sig"
    result = kumactl("--mesh", "demo", "generate", "dataplane-token", "--dataplane", "dp-1")
    assert (result.exit_code, result.stdout) == (0, "eyJhbGciOi.token.sig")
    method, path, _, body = canned.seen[-1]
    assert (method, path, json.loads(body)) == ("POST", "/tokens", {"mesh": "demo", "name": "dp-1"})
