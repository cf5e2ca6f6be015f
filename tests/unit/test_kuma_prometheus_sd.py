"""kuma-prometheus-sd's own pieces: Kuma's configuration messages, the output directory check
at start (as an unprivileged user: root writes anywhere), the atomic file_sd writer, and the
rules about where the admin token may go."""

from __future__ import annotations

import json
import os
import pwd
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.kuma_prometheus_sd.discovery import Endpoint
from cli.kuma_prometheus_sd.file_sd import FileSdWriter, SdError, TargetGroup, try_write_to_dir
from cli.kuma_prometheus_sd.main import cli


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.output


def test_kumas_configuration_messages():
    code, out = invoke("run", "--cp-address", "", "--name", "", "--output-file", "")
    assert code == 1
    assert out == (
        "Error: Invalid configuration: .ControlPlane is not valid: .ApiServer is not valid: "
        ".URL must be non-empty; .ControlPlane is not valid: .ApiServer is not valid: "
        ".URL must be a valid absolute URI; .MonitoringAssignment is not valid: .Client is not "
        "valid: .Name must be non-empty; .Prometheus is not valid: .OutputFile must be "
        "non-empty\n"
    )


def test_flags_and_env_are_kumas():
    code, out = invoke("run", "--help")
    assert code == 0
    for name in (
        "--cp-address",
        "KUMA_CONTROL_PLANE_API_SERVER_URL",
        "http://localhost:5681",
        "--name",
        "KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME",
        "kuma_sd",
        "--output-file",
        "KUMA_PROMETHEUS_OUTPUT_FILE",
        "kuma.file_sd.json",
        "--ca-cert-file",
        "--admin-token-file",
    ):
        assert name in out
    # the env var is read
    code, out = invoke("run", env={"KUMA_CONTROL_PLANE_API_SERVER_URL": "no-scheme"})
    assert code == 1 and ".URL must be a valid absolute URI" in out


@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that an unprivileged user can enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="kuma-sd-test-"))
    path.chmod(0o755)
    yield path
    for child in sorted(path.rglob("*"), reverse=True):
        child.chmod(0o755) if child.is_dir() else child.unlink()
        if child.is_dir():
            child.rmdir()
    path.rmdir()


def as_unprivileged(work: Callable[[], str]) -> str:
    """`work()`'s answer, run as `nobody` when this is root (in a child), else here."""
    if os.geteuid() != 0:
        return work()
    nobody = pwd.getpwnam("nobody")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            message = work()
        except BaseException as exc:  # noqa: BLE001
            message = repr(exc)
        os.write(writer, message.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    return message


def test_an_output_directory_it_cannot_write_stops_the_start(shared_dir: Path):
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)

    def start() -> str:
        return invoke(
            "run",
            "--cp-address",
            "http://127.0.0.1:9",  # never reached: the check comes first
            "--output-file",
            str(locked / "kuma.file_sd.json"),
        )[1]

    out = as_unprivileged(start)
    out = next(line for line in out.splitlines() if line.startswith("Error:"))
    prefix = (
        f'Error: unable to write to directory "{locked}": unable to create temporary files in '
        f'directory "{locked}": open {locked}/write-access-check'
    )
    assert out.startswith(prefix), out
    assert out.rstrip().endswith(": permission denied"), out
    assert list(locked.iterdir()) == []


def test_a_missing_output_directory_is_made(shared_dir: Path):
    target = shared_dir / "a" / "b"
    try_write_to_dir(str(target))
    assert target.is_dir() and stat.S_IMODE(target.stat().st_mode) == 0o755
    assert list(target.iterdir()) == []  # the probe is gone
    with pytest.raises(
        SdError, match='unable to create a directory "/proc/kuma": mkdir /proc/kuma'
    ):
        try_write_to_dir("/proc/kuma")


def test_the_writer_replaces_the_file_whole_and_only_on_change(tmp_path: Path):
    out = tmp_path / "kuma.file_sd.json"
    writer = FileSdWriter(str(out))
    group = TargetGroup("/meshes/m/dataplanes/d/0", ("10.0.0.1:5670",), (("job", "web"),))
    assert writer.write([]) is True
    assert json.loads(out.read_text()) == []
    inode = out.stat().st_ino
    assert writer.write([group]) is True
    assert json.loads(out.read_text()) == [{"targets": ["10.0.0.1:5670"], "labels": {"job": "web"}}]
    assert out.stat().st_ino != inode  # renamed over, never rewritten in place
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # Prometheus runs as another user
    assert writer.write([group]) is False  # the same content is not written again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kuma.file_sd.json"]


def test_the_admin_token_never_goes_in_plaintext_to_another_host(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    with pytest.raises(SdError, match="plaintext gRPC to another host"):
        Endpoint("grpc://cp.example:5676", token_file=str(token))
    local = Endpoint("grpc://127.0.0.1:5676", token_file=str(token))
    assert local.metadata() == (("authorization", "Bearer t0k3n"),)
    assert Endpoint("grpcs://cp.example:5676").metadata() == ()
    with pytest.raises(SdError, match=r'unsupported scheme "http". Use one of \[grpc grpcs\]'):
        Endpoint("http://cp.example:5676")
