"""The worker's own settings, from KUMA_WORKER_* env vars (the AMQP URI is `worker.amqpUri` of the
kuma-cp config, `KUMA_WORKER_AMQP_URI`).

    KUMA_WORKER_SWEEP_INTERVAL              10s  how often the liveness sweep runs
    KUMA_WORKER_HEARTBEAT_TIMEOUT           10s  an xDS replica silent this long is dead
    KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL    1m   how often old subscriptions are pruned
    KUMA_WORKER_INSIGHT_KEEP_CLOSED         5    closed subscriptions kept per Dataplane
    KUMA_WORKER_HEALTH_FILE                 /tmp/kuma-worker.health  touched while healthy
    KUMA_WORKER_HEALTH_INTERVAL             5s   how often it is touched

With the defaults a replica killed outright is seen Offline within two sweep intervals (timeout
plus at most one interval). Durations are Go durations ("10s", "1m30s").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from kuma.durations import parse_duration
from kuma.errors import ConfigError
from kuma.heartbeat import DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    sweep_interval: timedelta = timedelta(seconds=10)
    heartbeat_timeout: timedelta = DEFAULT_TIMEOUT
    insight_cleanup_interval: timedelta = timedelta(minutes=1)
    insight_keep_closed: int = 5
    health_file: str = "/tmp/kuma-worker.health"
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
            health_file=environ.get("KUMA_WORKER_HEALTH_FILE", defaults.health_file),
            health_interval=duration("KUMA_WORKER_HEALTH_INTERVAL", defaults.health_interval),
        )
