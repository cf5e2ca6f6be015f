"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here):
every reference resolves, every setting is one the services read, and scaling xDS is safe."""

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
TARGETS = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M))
OTHER_COMMANDS = {"sh", "sleep"}
DP_ENV = {p.envvar for p in kuma_dp_cli.commands["run"].params if getattr(p, "envvar", None)}
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
    } <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_buildable_and_runnable(name):
    service = SERVICES[name]
    assert "image" in service or "build" in service
    if "build" in service:
        assert service["build"]["target"] in TARGETS
    command = service.get("command")
    if command:
        assert command[0] in SCRIPTS | OTHER_COMMANDS, command


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_are_gated_on_health_or_completion(name):
    for dep, rule in (SERVICES[name].get("depends_on") or {}).items():
        assert dep in SERVICES, dep
        if rule["condition"] == "service_healthy":
            check = SERVICES[dep].get("healthcheck", {})
            assert check and not check.get("disable"), f"{dep} has no health check"
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


def test_xds_scales_without_host_port_clashes():
    xds = SERVICES["xds"]
    assert xds["deploy"]["replicas"] == 2
    assert "ports" not in xds  # reached as `xds` inside the network: DNS gives every replica
    env = SERVICES["bootstrap"]["environment"]
    assert env["KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST"] == "xds"
    published = [p.split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


def test_sidecars_share_their_workloads_network():
    assert SERVICES["redis-dp"]["network_mode"] == "service:redis-workload"
    assert SERVICES["backend-dp"]["network_mode"] == "service:backend"
