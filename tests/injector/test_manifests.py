"""`kumactl install control-plane` and the injector agree: command, env vars, port, probes, path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from click.testing import CliRunner

from cli.kumactl.main import cli
from services.injector.config import ENV_VARS, load_injector_config

ROOT = Path(__file__).resolve().parents[2]


def test_install_manifests_match_the_injector(tmp_path: Path):
    result = CliRunner().invoke(cli, ["install", "control-plane"], env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    docs = [yaml.safe_load(p) for p in result.stdout.split("\n---\n")[1:]]
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "kuma-injector"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "services.injector.main:main"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) <= set(ENV_VARS)
    assert "envFrom" not in container  # no store settings or credentials
    cfg = load_injector_config(env=env)  # the installer's settings are valid
    assert cfg.web_hook_server.port == container["ports"][0]["containerPort"] == 8443
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == cfg.web_hook_server.cert_dir
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthy",
        "port": 8443,
        "scheme": "HTTPS",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/ready",
        "port": 8443,
        "scheme": "HTTPS",
    }
    (config,) = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    assert hook["clientConfig"]["service"]["path"] == "/inject-sidecar"
    assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert hook["namespaceSelector"] == {"matchLabels": {"kuma.io/sidecar-injection": "enabled"}}
    (service,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "kuma-injector"
    ]
    assert service["spec"]["ports"][0]["targetPort"] == 8443
