"""The dataplane token as Envoy reads it: kuma-dp keeps a copy of the user's token file in its
own config directory, and Envoy sends that copy on every new ADS stream (the bootstrap's file
credentials). A copy, because Envoy sends the file's bytes as they are, and a token file written
by `kumactl generate dataplane-token > file` or `echo` ends with a newline, which is not a valid
header value. kuma-dp re-reads the user's file while it runs, so a renewed token reaches the
control plane at Envoy's next reconnect without a restart."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from cli.kuma_dp.control_plane import read_token

log = logging.getLogger("kuma-dp")

POLL_INTERVAL = 2.0  # seconds between looks at the user's token file


class TokenCopy:
    def __init__(self, source: str, directory: Path) -> None:
        self.source = source
        self.path = directory / "dataplane-token"
        self.token = ""
        self.sync()

    def sync(self) -> bool:
        """Copy the user's token if it changed; True when it did. A file that went missing or
        empty keeps the last copy (a half-written renewal must not cut the dataplane off)."""
        token = read_token(self.source)  # DpError when unreadable or empty
        if token == self.token:
            return False
        scratch = self.path.with_suffix(".new")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.replace(scratch, self.path)  # Envoy never sees a half-written token
        self.token = token
        return True

    async def follow(self, interval: float = POLL_INTERVAL) -> None:
        """Keep the copy current until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self.sync():
                    log.info("dataplane token renewed from %s", self.source)
            except Exception as exc:  # noqa: BLE001 (keep the last good token, say why)
                log.warning("keeping the current dataplane token: %s", exc)
