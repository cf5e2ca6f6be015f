"""The worker's own settings, from KUMA_WORKER_* env vars (the AMQP URI is `worker.amqpUri` of the
kuma-cp config, `KUMA_WORKER_AMQP_URI`).

    KUMA_WORKER_SWEEP_INTERVAL              10s  how often the liveness sweep runs
    KUMA_WORKER_HEARTBEAT_TIMEOUT           10s  an xDS replica silent this long is dead
    KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL    1m   how often old subscriptions are pruned
    KUMA_WORKER_INSIGHT_KEEP_CLOSED         5    closed subscriptions kept per Dataplane
    KUMA_WORKER_HEALTH_FILE                 (below)  touched while healthy
    KUMA_WORKER_HEALTH_INTERVAL             5s   how often it is touched

With the defaults a replica killed outright is seen Offline within two sweep intervals (timeout
plus at most one interval). Durations are Go durations ("10s", "1m30s").

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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from kuma.durations import parse_duration
from kuma.errors import ConfigError
from kuma.heartbeat import DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    sweep_interval: timedelta = timedelta(seconds=10)
    heartbeat_timeout: timedelta = DEFAULT_TIMEOUT
    insight_cleanup_interval: timedelta = timedelta(minutes=1)
    insight_keep_closed: int = 5
    health_file: str = ""  # from_env: default_health_file()
    health_interval: timedelta = timedelta(seconds=5)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        environ = os.environ if env is None else env
        defaults = cls()

        def duration(name: str, default: timedelta) -> timedelta:
            text = environ.get(name)
            if text is None:
                return default
            try:
                value = parse_duration(text)
            except ValueError:
                raise ConfigError(f"{name}: {text!r} is not a duration such as 10s") from None
            if value <= timedelta(0):
                raise ConfigError(f"{name}: must be positive")
            return value

        keep_text = environ.get("KUMA_WORKER_INSIGHT_KEEP_CLOSED")
        keep = defaults.insight_keep_closed
        if keep_text is not None:
            try:
                keep = int(keep_text)
            except ValueError:
                keep = -1
            if keep < 0:
                raise ConfigError("KUMA_WORKER_INSIGHT_KEEP_CLOSED: must be a whole number >= 0")
        return cls(
            sweep_interval=duration("KUMA_WORKER_SWEEP_INTERVAL", defaults.sweep_interval),
            heartbeat_timeout=duration("KUMA_WORKER_HEARTBEAT_TIMEOUT", defaults.heartbeat_timeout),
            insight_cleanup_interval=duration(
                "KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL", defaults.insight_cleanup_interval
            ),
            insight_keep_closed=keep,
            health_file=environ.get("KUMA_WORKER_HEALTH_FILE") or default_health_file(environ),
            health_interval=duration("KUMA_WORKER_HEALTH_INTERVAL", defaults.health_interval),
        )


def default_health_file(env: Mapping[str, str] | None = None) -> str:
    """`$XDG_RUNTIME_DIR/kuma-worker/health`, else `~/.cache/kuma-worker/health`."""
    environ = os.environ if env is None else env
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path.home() / ".cache"
    return str(base / "kuma-worker" / "health")


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
