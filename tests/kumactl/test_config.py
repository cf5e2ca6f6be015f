"""The config file (spec §6.1) and `kumactl config ...` (spec §6.7)."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from tests.kumactl.conftest import Canned, ControlPlane, Kumactl, free_port

DEFAULT_CONFIG = """\
contexts:
- controlPlane: local
  name: local
controlPlanes:
- coordinates:
    apiServer:
      url: http://localhost:5681
  name: local
currentContext: local
"""
HINT = "Use `kumactl config control-planes add` to add a Control Plane and make it active"


def config_file(home: Path) -> Path:
    return home / ".kumactl" / "config"


def test_first_run_writes_the_default_config(kumactl: Kumactl, home: Path):
    result = kumactl("config", "view")
    assert result.exit_code == 0
    assert result.stdout == DEFAULT_CONFIG + "\n"
    path = config_file(home)
    assert path.read_text() == DEFAULT_CONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755


def test_missing_config_file_flag(kumactl: Kumactl, home: Path):
    result = kumactl("--config-file", str(home / "nope"), "config", "view")
    assert result.exit_code == 1
    assert result.stderr == f'Error: Failed to access configuration file "{home / "nope"}"\n'
    assert not config_file(home).exists()


def test_snake_case_is_read_and_camel_case_written(kumactl: Kumactl, home: Path):
    path = home / "cfg.yaml"
    path.write_text(
        "control_planes:\n- name: x\n  coordinates:\n    api_server:\n      url: http://x:1\n"
        "contexts:\n- name: x\n  control_plane: x\n  credentials:\n    admin_api:\n"
        "      client_cert: /c\n      client_key: /k\ncurrent_context: x\n"
    )
    result = kumactl(
        "--config-file", str(path), "config", "control-planes", "switch", "--name", "x"
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(path.read_text()) == {
        "controlPlanes": [{"name": "x", "coordinates": {"apiServer": {"url": "http://x:1"}}}],
        "contexts": [
            {
                "name": "x",
                "controlPlane": "x",
                "credentials": {"adminApi": {"clientCert": "/c", "clientKey": "/k"}},
            }
        ],
        "currentContext": "x",
    }


def test_required_flags(kumactl: Kumactl):
    result = kumactl("config", "control-planes", "add")
    assert (result.exit_code, result.stderr) == (
        1,
        'Error: required flag(s) "address", "name" not set\n',
    )
    result = kumactl("config", "control-planes", "switch")
    assert result.stderr == 'Error: required flag(s) "name" not set\n'


def test_add_list_switch_remove(kumactl: Kumactl, home: Path, shared_cp: ControlPlane):
    add = ("config", "control-planes", "add", "--name", "cp1", "--address", shared_cp.url)
    result = kumactl(*add)
    assert result.exit_code == 0, result.output
    assert result.stdout == 'added Control Plane "cp1"\nswitched active Control Plane to "cp1"\n'

    result = kumactl(*add)
    assert result.stderr == (
        'Error: Control Plane with name "cp1" already exists. '
        "Use --overwrite to replace an existing one.\n"
    )
    assert kumactl(*add, "--overwrite", "--auth-token", "s3cret").exit_code == 0
    saved = yaml.safe_load(config_file(home).read_text())
    assert saved["contexts"][-1] == {
        "name": "cp1",
        "controlPlane": "cp1",
        "credentials": {"authToken": "s3cret"},
    }

    assert kumactl("config", "control-planes", "list").stdout == (
        "ACTIVE   NAME    ADDRESS\n"
        "         local   http://localhost:5681\n"
        f"*        cp1     {shared_cp.url}\n"
    )
    result = kumactl("config", "control-planes", "switch", "--name", "local")
    assert result.stdout == 'switched active Control Plane to "local"\n'
    result = kumactl("config", "control-planes", "switch", "--name", "nope")
    assert result.stderr == 'Error: there is no Control Plane with name "nope"\n'

    result = kumactl("config", "control-planes", "remove", "--name", "local")
    assert (
        result.stdout == 'removed Control Plane "local"\nswitched active Control Plane to "cp1"\n'
    )
    result = kumactl("config", "control-planes", "remove", "--name", "cp1")
    assert (
        result.stdout
        == f'removed Control Plane "cp1"\nthere is no active Control Plane left. {HINT}\n'
    )
    result = kumactl("config", "control-planes", "remove", "--name", "cp1")
    assert result.stderr == 'Error: there is no Control Plane with name "cp1"\n'

    result = kumactl("get", "meshes")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: active Control Plane is not set. {HINT}\n",
    )


def test_broken_current_context(kumactl: Kumactl, home: Path):
    path = home / "cfg.yaml"
    path.write_text("currentContext: ghost\n")
    result = kumactl("--config-file", str(path), "get", "meshes")
    assert result.stderr == f"Error: apparently, configuration is broken. {HINT}\n"


def test_add_rejects_invalid_coordinates(kumactl: Kumactl):
    result = kumactl("config", "control-planes", "add", "--name", "x", "--address", "not-a-url")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Control Plane configuration is not valid: ")


def test_add_checks_the_address(kumactl: Kumactl, stub_server: tuple[str, Canned]):
    add = ("config", "control-planes", "add", "--name", "x", "--address")
    url, canned = stub_server

    port = free_port()
    result = kumactl(*add, f"http://127.0.0.1:{port}")
    assert result.stderr == (
        "Error: could not connect to the Control Plane API Server: "
        f'Get "http://127.0.0.1:{port}": connection refused\n'
    )

    canned.status = 503
    assert kumactl(*add, url).stderr == "Error: Control Plane API Server is not responding\n"

    canned.status, canned.body = 200, b"<html>"
    result = kumactl(*add, url)
    assert result.stderr.startswith(
        "Error: could not unmarshal body from the Control Plane API Server. "
        "Provided address is not valid Kuma Control Plane API Server: "
    )

    canned.body = b'{"tagline": "Other"}'
    result = kumactl(*add, url)
    assert result.stderr == "Error: provided address is not valid Kuma Control Plane API Server\n"

    canned.body = b'{"tagline": "Kuma"}'
    assert kumactl(*add, url, "--auth-token", "tok").exit_code == 0
    assert canned.seen is not None
    assert canned.seen[-1][2]["Authorization"] == "Bearer tok"
