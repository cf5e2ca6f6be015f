"""`apiServer.adminTokenFile`: the admin token read from a file the operator provides (a secret
on a shared volume). The control plane reads it and never writes it."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from kuma.admin_token import (
    MAX_TOKEN_FILE_BYTES,
    configured_token,
    ensure_admin_token,
    read_token_file,
    stored_token,
)
from kuma.config import ENV_VARS, KumaCpConfig, load_config, to_json
from kuma.errors import ConfigError
from kuma.store import MemoryStore
from kuma.wiring import open_core
from services.api.app import create_app

TOKEN = "op-chosen-token_0123456789abcdef"
REMOTE = {"REMOTE_ADDR": "192.0.2.7"}  # not loopback: writes need the token
MESH = {"type": "Mesh", "name": "m1"}


def config(**env: str) -> KumaCpConfig:
    return load_config(env=env)


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o400)
    return path


def test_the_setting_has_a_key_and_an_env_var(tmp_path: Path):
    assert ENV_VARS["KUMA_API_SERVER_ADMIN_TOKEN_FILE"] == "apiServer.adminTokenFile"
    assert config().api_server.admin_token_file == ""
    conf = tmp_path / "kuma-cp.yaml"
    conf.write_text("apiServer:\n  adminTokenFile: /run/secrets/kuma-admin\n")
    assert load_config(str(conf), env={}).api_server.admin_token_file == "/run/secrets/kuma-admin"
    # a path, not the credential: shown as is
    cfg = config(KUMA_API_SERVER_ADMIN_TOKEN_FILE="/t")
    assert to_json(cfg)["apiServer"]["adminTokenFile"] == "/t"


def test_the_file_is_the_token(token_file: Path):
    assert read_token_file(str(token_file)) == TOKEN  # the final newline is not part of it
    cfg = config(KUMA_API_SERVER_ADMIN_TOKEN_FILE=str(token_file))
    assert configured_token(cfg) == TOKEN


def test_the_file_wins_over_a_stored_token_and_nothing_is_stored(token_file: Path):
    store = MemoryStore()
    generated = ensure_admin_token(config(), store)
    assert generated != TOKEN
    cfg = config(KUMA_API_SERVER_ADMIN_TOKEN_FILE=str(token_file))
    assert ensure_admin_token(cfg, store) == TOKEN
    assert stored_token(store) == generated  # untouched

    fresh = MemoryStore()
    assert ensure_admin_token(cfg, fresh) == TOKEN
    assert stored_token(fresh) is None


def test_a_missing_file_is_an_error_and_is_not_created(tmp_path: Path):
    path = tmp_path / "absent"
    cfg = config(KUMA_API_SERVER_ADMIN_TOKEN_FILE=str(path))
    with pytest.raises(ConfigError, match="does not exist.*never creates it"):
        ensure_admin_token(cfg, MemoryStore())
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b" \n\n", "is empty"),
        (b"two words\n", "one word of visible ASCII"),
        ("caf\u00e9".encode(), "one word of visible ASCII"),
        (b"a" * (MAX_TOKEN_FILE_BYTES + 1), "longer than"),
    ],
)
def test_unusable_contents_are_errors(tmp_path: Path, content: bytes, problem: str):
    path = tmp_path / "admin-token"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem) as err:
        read_token_file(str(path))
    assert "apiServer.adminTokenFile" in str(err.value)
    if content.strip():  # a credential's text is never echoed
        assert content.strip()[:8].decode("latin-1") not in str(err.value)


def test_an_unreadable_file_is_an_error(token_file: Path):
    token_file.chmod(0o000)
    if os.geteuid() != 0:
        with pytest.raises(ConfigError, match="cannot be read: Permission denied"):
            read_token_file(str(token_file))
        return
    # root reads any file: read it from a child that became an unprivileged user
    nobody = pwd.getpwnam("nobody")
    token_file.parent.chmod(0o755)  # let it reach the file, not read it
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        message = "read it"
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            read_token_file(str(token_file))
        except ConfigError as exc:
            message = str(exc)
        except BaseException as exc:  # noqa: BLE001
            message = repr(exc)
        os.write(writer, message.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    assert "cannot be read: Permission denied" in message, message


def test_a_directory_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot be read"):
        read_token_file(str(tmp_path))


def test_token_and_token_file_together_are_an_error(token_file: Path):
    cfg = config(
        KUMA_API_SERVER_ADMIN_TOKEN="other",
        KUMA_API_SERVER_ADMIN_TOKEN_FILE=str(token_file),
    )
    with pytest.raises(ConfigError, match="both set: choose one"):
        configured_token(cfg)


def test_without_either_nothing_is_configured():
    assert configured_token(config()) is None
    assert configured_token(config(KUMA_API_SERVER_ADMIN_TOKEN="t")) == "t"


@pytest.fixture()
def remote_client(token_file: Path) -> Iterator[FlaskClient]:
    cfg = config(KUMA_API_SERVER_ADMIN_TOKEN_FILE=str(token_file))
    core = open_core(cfg)
    try:
        yield create_app(cfg, core).test_client()
    finally:
        core.close()


def test_the_api_takes_writes_with_the_files_token(remote_client: FlaskClient):
    denied = remote_client.put("/meshes/m1", json=MESH, environ_base=REMOTE)
    assert denied.status_code == 401
    wrong = {"Authorization": "Bearer generated-elsewhere"}
    refused = remote_client.put("/meshes/m1", json=MESH, headers=wrong, environ_base=REMOTE)
    assert refused.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = remote_client.put("/meshes/m1", json=MESH, headers=auth, environ_base=REMOTE)
    assert created.status_code == 201
    assert remote_client.get("/meshes/m1", environ_base=REMOTE).status_code == 200
