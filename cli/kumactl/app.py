"""What every command gets from the root group: the loaded config, the `--mesh`, and a client
for the current context's control plane."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from cli.kumactl import config as kconfig
from cli.kumactl.client import ApiClient


@dataclass
class App:
    config: kconfig.Config
    config_path: Path
    mesh: str

    def client(self, timeout: float | None = None) -> ApiClient:
        ctx, cp = self.config.current()
        if timeout is None:
            return ApiClient(cp.url, ctx.auth_token)
        return ApiClient(cp.url, ctx.auth_token, timeout)

    def save(self) -> None:
        kconfig.save(self.config, self.config_path)


pass_app = click.make_pass_decorator(App)
