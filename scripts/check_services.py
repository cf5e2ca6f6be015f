"""Say which of the services the tests need is down, and how to start it."""

from __future__ import annotations

import socket
import sys

SERVICES = [
    (
        "PostgreSQL",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    (
        "Redis",
        6379,
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    ),
    ("RabbitMQ", 5672, "rabbitmq-server -detached"),
]


def main() -> int:
    down = []
    for name, port, start in SERVICES:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            down.append(
                f"- {name} on 127.0.0.1:{port} is down ({exc}); start it with:\n    {start}"
            )
    if down:
        print("The test suite needs these services:\n" + "\n".join(down), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
