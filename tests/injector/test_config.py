"""Injector configuration: defaults, file, KUMA_INJECTOR_* env vars, validation messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from kuma.errors import ConfigError
from services.injector.config import ENV_VARS, load_injector_config
from services.injector.main import main


def test_defaults_are_the_spec_s():
    cfg = load_injector_config(env={})
    assert cfg.web_hook_server.port == 8443
    s = cfg.injector.sidecar_container
    assert (s.redirect_port, s.uid, s.gid, s.admin_port) == (15001, 5678, 5678, 9901)
    assert s.drain_time == timedelta(seconds=30)
    assert s.readiness_probe.failure_threshold == 12
    assert s.liveness_probe.initial_delay_seconds == 60
    assert s.resources.requests.cpu == "50m"
    assert cfg.injector.control_plane.api_server.url == "http://kuma-control-plane.kuma-system:5681"


def test_env_var_names_are_kuma_s():
    assert ENV_VARS["KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR"] == "webHookServer.certDir"
    assert ENV_VARS["KUMA_INJECTOR_SIDECAR_CONTAINER_GUI"] == "injector.sidecarContainer.gid"
    assert ENV_VARS["KUMA_INJECTOR_INIT_CONTAINER_IMAGE"] == "injector.initContainer.image"
    # gunicorn's knobs keep the env var names they had before they were config keys
    assert ENV_VARS["KUMA_INJECTOR_WORKERS"] == "webHookServer.workers"
    assert ENV_VARS["KUMA_INJECTOR_THREADS"] == "webHookServer.threads"
    cfg = load_injector_config(env={"KUMA_INJECTOR_SIDECAR_CONTAINER_GID": "77"})
    assert cfg.injector.sidecar_container.gid == 77


def test_file_then_env(tmp_path: Path):
    path = tmp_path / "injector.yaml"
    path.write_text(
        "webHookServer:\n  port: 9443\n  certDir: /certs\n"
        "injector:\n  sidecarContainer:\n    image: dp:1\n    drainTime: 10s\n"
        "    readinessProbe:\n      periodSeconds: 9\n"
    )
    cfg = load_injector_config(str(path), env={"KUMA_INJECTOR_SIDECAR_CONTAINER_IMAGE": "dp:2"})
    assert cfg.web_hook_server.port == 9443
    assert cfg.web_hook_server.cert_file == "/certs/tls.crt"
    assert cfg.injector.sidecar_container.image == "dp:2"
    assert cfg.injector.sidecar_container.drain_time == timedelta(seconds=10)
    assert cfg.injector.sidecar_container.readiness_probe.period_seconds == 9


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KUMA_INJECTOR_WEBHOOK_SERVER_PORT": "70000"},
            "webHookServer.port (KUMA_INJECTOR_WEBHOOK_SERVER_PORT): must be in the range",
        ),
        ({"KUMA_INJECTOR_WEBHOOK_SERVER_PORT": "http"}, "expected a non-negative integer"),
        ({"KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR": ""}, "webHookServer.certDir"),
        (
            {"KUMA_INJECTOR_THREADS": "0"},
            "webHookServer.threads (KUMA_INJECTOR_THREADS): must be at least 1",
        ),
        (
            {"KUMA_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_TIMEOUT_SECONDS": "0"},
            "injector.sidecarContainer.readinessProbe.timeoutSeconds "
            "(KUMA_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_TIMEOUT_SECONDS): must be >= 1",
        ),
        (
            {"KUMA_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_FAILURE_THRESHOLD": "-1"},
            "livenessProbe.failureThreshold",
        ),
        (
            {"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY": "lots"},
            "'lots' is not a valid quantity",
        ),
        (
            {"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU": "2"},
            "resources.requests.cpu (KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU): "
            "must be at most the cpu limit",
        ),
        ({"KUMA_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT": "0"}, "redirectPort"),
        ({"KUMA_INJECTOR_SIDECAR_CONTAINER_ADMIN_PORT": "65536"}, "adminPort"),
        ({"KUMA_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME": "0s"}, "drainTime"),
        ({"KUMA_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME": "soon"}, "a duration"),
        ({"KUMA_INJECTOR_CONTROL_PLANE_API_SERVER_URL": "cp:5681"}, "absolute http(s) URL"),
        ({"KUMA_INJECTOR_SIDECAR_CONTAINER_IMAGE": ""}, "sidecarContainer.image"),
        ({"KUMA_INJECTOR_INIT_CONTAINER_IMAGE": ""}, "initContainer.image"),
    ],
)
def test_invalid_settings_are_named(env: dict[str, str], message: str):
    with pytest.raises(ConfigError, match="Invalid") as info:
        load_injector_config(env=env)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_injector_config(
            env={
                "KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR": "",
                "KUMA_INJECTOR_SIDECAR_CONTAINER_UID": "1",
                "KUMA_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_PERIOD_SECONDS": "0",
            }
        )
    assert str(info.value).count(";") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("webHookServer:\n  prot: 1\n", 'webHookServer.prot: unknown key (did you mean "port"?)'),
        ("injector:\n  sidecarContainer:\n    uid: abc\n", "expected a non-negative integer"),
        ("injector: [1\n", "could not parse"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_injector_config(str(path), env={})
    assert message in str(info.value)


def test_cli_reports_config_errors_and_missing_tls(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(main, [], env={"KUMA_INJECTOR_WEBHOOK_SERVER_PORT": "0"})
    assert result.exit_code == 1
    assert "webHookServer.port" in result.output
    result = runner.invoke(main, [], env={"KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert f"TLS file {tmp_path}/tls.crt not found" in result.output
