"""Running a WSGI app under gunicorn from a console script: the settings of the service's own
`gunicorn.conf.py`, then the command line's overrides. Shared by the API, bootstrap and
injector entry points."""

from __future__ import annotations

import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from gunicorn.app.base import BaseApplication

from kuma import logs, prom
from kuma.edge.clitools import log_level_option
from kuma.errors import ConfigError

_Cfg = TypeVar("_Cfg")


class GunicornService(BaseApplication):  # type: ignore[misc]
    def __init__(
        self, conf_file: Path, build_app: Callable[[], Any], overrides: dict[str, Any]
    ) -> None:
        self.conf_file = conf_file
        self.build_app = build_app
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        super().__init__()

    def load_config(self) -> None:
        for key, value in {**runpy.run_path(str(self.conf_file)), **self.overrides}.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.build_app()


def serve(
    conf_file: Path,
    config_env: str,
    config_file: str | None,
    load: Callable[[str | None], _Cfg],
    build_app: Callable[[_Cfg], Any],
    overrides: dict[str, Any],
) -> None:
    """A service's console script: name the config file to its `gunicorn.conf.py` (through
    `config_env`), load the config (a bad setting is a usage error, not a traceback), run."""
    if config_file:
        os.environ[config_env] = config_file
    try:
        cfg = load(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # the workers log as this process does (`--log-level`, KUMA_LOG_FORMAT)
    overrides = {"logconfig_dict": logs.config_dict(logs.current_level()), **overrides}
    # The workers' metrics meet in a directory of this process tree's own (`kuma.prom`).
    with prom.private_dir():
        GunicornService(conf_file, lambda: build_app(cfg), overrides).run()


def server_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every gunicorn service takes: `-c/--config-file`, `--workers`, `--log-level`."""
    command = click.option(
        "-c", "--config-file", type=click.Path(), default=None, help="configuration file"
    )(command)
    command = click.option("--workers", type=int, default=None, help="gunicorn worker processes")(
        command
    )
    return log_level_option("info")(command)
