"""docker-compose.yml and the Dockerfile, checked statically (no Docker needed): every
reference resolves, every setting is one the services read, scaling xDS is safe, nothing turns
tokens off, and credentials and state live on named volumes. `tests/compose/` runs the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from cli.kuma_dp.main import cli as kuma_dp_cli
from kuma.config import ENV_VARS
from services.injector.config import ENV_VARS as INJECTOR_ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
DOCKERFILE = (ROOT / "Dockerfile").read_text()
TARGETS = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.M))
OTHER_COMMANDS = {"sh", "sleep", "run"}  # `run`: kuma-dp's, the kuma-dp image's entrypoint
DP_ENV = {p.envvar for p in kuma_dp_cli.commands["run"].params if getattr(p, "envvar", None)}
SIDECARS = {"redis-dp": "redis-workload", "backend-dp": "backend"}
WORKLOADS = set(SIDECARS.values())
ONE_SHOT = {name for name, s in SERVICES.items() if s.get("restart") == "no"}


def test_the_stack_has_every_service():
    assert {
        "postgres",
        "redis",
        "rabbitmq",
        "migrate",
        "api",
        "xds",
        "bootstrap",
        "injector",
        "worker",
        "redis-dp",
        "backend-dp",
        "gui",
    } <= set(SERVICES)


def test_the_gui_service_reads_the_api_service_and_holds_no_credential():
    """The split stack's GUI (issue 20): `kuma-gui` on 5683, reading the `api` service over the
    compose network once it is healthy; no volume (no admin token, no certificate key) and no
    store setting, since it writes nothing."""
    gui = SERVICES["gui"]
    assert gui["command"] == ["kuma-gui"]
    assert gui["environment"] == {"KUMA_GUI_SERVER_API_SERVER_URL": "http://api:5681"}
    assert SERVICES["api"]["command"] == ["kuma-api"]
    assert any(_default(p).endswith(":5681") for p in SERVICES["api"]["ports"])
    assert gui["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert "volumes" not in gui
    assert [_default(p) for p in gui["ports"]] == ["127.0.0.1:5683:5683"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_buildable_and_runnable(name):
    service = SERVICES[name]
    assert "image" in service or "build" in service
    if "build" in service:
        assert service["build"]["target"] in TARGETS
    command = service.get("command")
    if command:
        assert command[0] in SCRIPTS | OTHER_COMMANDS, command


def test_the_injector_is_started_as_kuma_starts_it():
    """`kuma-injector run`, Kuma 0.3.2's form (issue 19 item 4), as `kumactl install` has it."""
    assert SERVICES["injector"]["command"] == ["kuma-injector", "run"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_are_gated_on_health_or_completion(name):
    for dep, rule in (SERVICES[name].get("depends_on") or {}).items():
        assert dep in SERVICES, dep
        if rule["condition"] == "service_healthy":
            check = SERVICES[dep].get("healthcheck", {})
            assert check and not check.get("disable"), f"{dep} has no health check"
        elif rule["condition"] == "service_started":
            assert "healthcheck" not in SERVICES[dep], f"{dep} has a health check: wait for it"
        else:
            assert rule["condition"] == "service_completed_successfully"
            assert dep in ONE_SHOT, f"{dep} never completes"


@pytest.mark.parametrize("name", ["api", "xds", "bootstrap", "injector", "worker"])
def test_long_running_services_have_health_checks(name):
    check = SERVICES[name]["healthcheck"]
    assert check["test"][0] == "CMD" and not check.get("disable")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_kuma_setting_is_read_by_someone(name):
    env = SERVICES[name].get("environment") or {}
    known = set(ENV_VARS) | set(INJECTOR_ENV_VARS) | DP_ENV
    unknown = {k for k in env if k.startswith("KUMA_") and k not in known}
    assert not unknown, f"{name}: settings nothing reads: {sorted(unknown)}"


def _default(text: str) -> str:
    """`${VAR:-default}` as compose reads it with VAR unset."""
    assert "$" not in re.sub(r"\$\{\w+:-[^}]*\}", "", text), text  # every variable has one
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def published() -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of every published port, by default."""
    return [
        tuple(_default(p).split(":"))  # type: ignore[misc]
        for s in SERVICES.values()
        for p in s.get("ports", [])
    ]


def test_xds_scales_without_host_port_clashes():
    xds = SERVICES["xds"]
    assert xds["deploy"]["replicas"] == 2
    assert "ports" not in xds  # reached as `xds` inside the network: DNS gives every replica
    # sidecars dial every replica through one name on the mesh network (not `xds`: a gRPC
    # target `xds:5678` means gRPC's own xDS resolver)
    host = _env("bootstrap")["KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST"]
    assert host == "kuma-xds" and xds["networks"]["mesh"]["aliases"] == [host]
    host_ports = [port for _, port, _ in published()]
    assert len(host_ports) == len(set(host_ports))


def test_ports_are_published_on_loopback_by_default_and_movable():
    assert {(port, inner) for _, port, inner in published()} == {
        ("5681", "5681"),
        ("5680", "5680"),
        ("5682", "5682"),
        ("8443", "8443"),
        ("5683", "5683"),  # the GUI
    }
    assert {host for host, _, _ in published()} == {"127.0.0.1"}
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert port.startswith("${KUMA_COMPOSE_HOST_IP:-127.0.0.1}:${KUMA_COMPOSE_"), port


def test_sidecars_share_their_workloads_network():
    for sidecar, workload in SIDECARS.items():
        assert SERVICES[sidecar]["network_mode"] == f"service:{workload}"


def _env(service: str) -> dict[str, str]:
    return SERVICES[service].get("environment") or {}


def _mounts(service: str) -> dict[str, str]:
    """Volume name -> where it is mounted (with `:ro` when read-only)."""
    out = {}
    for spec in SERVICES[service].get("volumes", []):
        name, _, where = spec.partition(":")
        out[name] = where
    return out


def test_nothing_turns_tokens_or_checks_off():
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            assert key not in {
                "KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED",
                "KUMA_DATAPLANE_TOKEN_SERVER_ENABLED",
                "KUMA_GENERAL_TRUST_LOOPBACK",
                "KUMA_XDS_SERVER_TLS_ENABLED",
                "KUMA_API_SERVER_ADMIN_TOKEN",  # a token in the file would be in every copy
            }, f"{name}: {key}={value}"


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_each_sidecar_runs_with_its_own_dataplane_token(sidecar):
    command = SERVICES[sidecar]["command"]
    token_file = command[command.index("--dataplane-token-file") + 1]
    token_volumes = [v for v, where in _mounts(sidecar).items() if v.startswith("dataplane-tokens")]
    assert len(token_volumes) == 1
    (volume,) = token_volumes
    assert _mounts(sidecar)[volume] == str(Path(token_file).parent) + ":ro"
    others = [s for s in SIDECARS if s != sidecar]
    assert all(volume not in _mounts(other) for other in others)
    # demo-setup writes it there, for the Dataplane this sidecar runs
    setup = SERVICES["demo-setup"]
    assert volume in _mounts("demo-setup")
    assert "kumactl generate dataplane-token" in setup["command"][-1]
    assert _env(sidecar)["KUMA_DATAPLANE_NAME"] in setup["command"][-1]


def test_the_admin_token_comes_from_a_file_on_a_volume():
    for service in ("api", "worker", "xds"):  # xds: its MADS (5676) checks the admin token
        path = _env(service)["KUMA_API_SERVER_ADMIN_TOKEN_FILE"]
        assert _mounts(service)["admin-token"] == str(Path(path).parent) + ":ro"
    assert "/run/kuma/admin/token" in SERVICES["demo-setup"]["command"][-1]
    assert "/run/kuma/admin/token" in SERVICES["certs"]["command"][-1]  # made once, if missing
    holders = {name for name in SERVICES if "admin-token" in _mounts(name)}
    assert holders == {"certs", "api", "worker", "xds", "demo-setup"}


def test_state_and_credentials_live_on_named_volumes():
    declared = set(COMPOSE["volumes"])
    used = {v for name in SERVICES for v in _mounts(name)}
    assert used == declared  # named volumes only: no host paths, nothing declared and unused
    assert _mounts("postgres")["postgres-data"] == "/var/lib/postgresql/data"
    assert {"admin-token", "injector-tls", "control-plane-tls", "control-plane-ca"} <= declared
    # the one-shot that makes them hands them to the services' uid
    assert SERVICES["certs"]["user"] == "root"
    assert "chown -R 5678:5678" in SERVICES["certs"]["command"][-1]
    assert re.search(r"^RUN useradd --system --uid 5678 ", DOCKERFILE, re.M)


def test_keys_reach_only_their_services():
    for volume, allowed in {
        "injector-tls": {"certs", "injector"},
        "control-plane-tls": {"certs", "xds", "bootstrap"},
        "postgres-data": {"postgres"},
    }.items():
        assert {name for name in SERVICES if volume in _mounts(name)} == allowed, volume
    for sidecar in SIDECARS:
        assert _mounts(sidecar)["control-plane-ca"].endswith(":ro")  # the certificate alone


def test_workloads_reach_bootstrap_and_xds_but_not_the_state():
    for workload in WORKLOADS:
        assert SERVICES[workload]["networks"] == ["mesh"]
    for service in ("bootstrap", "xds", "demo-setup"):
        assert set(SERVICES[service]["networks"]) == {"default", "mesh"}
    for service in ("postgres", "redis", "rabbitmq", "api", "worker", "injector"):
        assert "networks" not in SERVICES[service]  # `default` only


def test_services_run_under_an_init():
    """PID 1 in a container ignores SIGTERM without a handler: `down` would wait for SIGKILL."""
    for name, service in SERVICES.items():
        if "image" in service and service["image"].startswith("kuma-py") or name == "backend":
            assert service.get("init") is True, name


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_sidecars_verify_the_control_plane(sidecar):
    assert _env(sidecar)["KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL"] == "https://bootstrap:5682"
    command = SERVICES[sidecar]["command"]
    ca_file = command[command.index("--ca-cert-file") + 1]
    assert _mounts(sidecar)["control-plane-ca"] == str(Path(ca_file).parent) + ":ro"
    assert f"cp /run/kuma/control-plane-tls/tls.crt {ca_file}" in SERVICES["certs"]["command"][-1]


@pytest.mark.parametrize("service", ["xds", "bootstrap"])
def test_every_replica_presents_the_certificate_certs_made(service):
    env = _env(service)
    cert, key = env["KUMA_GENERAL_TLS_CERT_FILE"], env["KUMA_GENERAL_TLS_KEY_FILE"]
    where = _mounts(service)["control-plane-tls"]
    assert where.endswith(":ro")
    assert {str(Path(cert).parent), str(Path(key).parent)} == {where.removesuffix(":ro")}
    script = SERVICES["certs"]["command"][-1]
    names = re.search(r"pair /run/kuma/control-plane-tls ((?:--cp-hostname \S+ ?\\?\s*)+)", script)
    assert names, script
    assert set(re.findall(r"--cp-hostname (\S+)", names[1])) == {"xds", "kuma-xds", "bootstrap"}
