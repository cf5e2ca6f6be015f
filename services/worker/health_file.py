"""The worker's health file (`worker.healthFile`, KUMA_WORKER_HEALTH_FILE; the worker's other
settings are the `worker` section of the kuma-cp config, kuma/config/schema.py).

The health file lives in a private directory: its parent must be a directory (not a symbolic
link) owned by the worker's user with no access for group or others (mode 0700); the worker
creates it so when missing and refuses to start otherwise. The default is
`$XDG_RUNTIME_DIR/kuma-worker/health` when XDG_RUNTIME_DIR is set, else
`~/.cache/kuma-worker/health`: never a predictable path in a shared /tmp, where another user
could plant the directory or a link first. `kuma-worker --health-file` reads the same setting.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from kuma.config import WorkerConfig
from kuma.errors import ConfigError


def default_health_file(env: Mapping[str, str] | None = None) -> str:
    """`$XDG_RUNTIME_DIR/kuma-worker/health`, else `~/.cache/kuma-worker/health`."""
    environ = os.environ if env is None else env
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path.home() / ".cache"
    return str(base / "kuma-worker" / "health")


def health_file(worker: WorkerConfig, env: Mapping[str, str] | None = None) -> str:
    """`worker.healthFile`, or the default when it is empty."""
    return worker.health_file or default_health_file(env)


def private_health_file(path: str) -> Path:
    """`path`, once its directory is known to be private: created with mode 0700 when missing;
    otherwise it must be a real directory owned by this user with no group or other access
    (ConfigError naming the problem)."""
    file = Path(path)
    directory = file.parent
    if not file.is_absolute():
        raise ConfigError(f"KUMA_WORKER_HEALTH_FILE: {path!r} must be an absolute path")
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"KUMA_WORKER_HEALTH_FILE: cannot create {directory}: {exc.strerror or exc}"
        ) from None
    info = directory.lstat()
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory (or is a symbolic link)"
    elif info.st_uid != os.getuid():
        problem = f"is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    elif info.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}: group and others must have no access"
    if problem is not None:
        raise ConfigError(
            f"KUMA_WORKER_HEALTH_FILE: the directory {directory} {problem}; the health file "
            "must live in a private directory (mode 0700, owned by the worker's user)"
        )
    if file.is_symlink():
        raise ConfigError(f"KUMA_WORKER_HEALTH_FILE: {file} is a symbolic link")
    return file
