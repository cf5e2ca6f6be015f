"""Running a WSGI app under gunicorn from a console script: the settings of the service's own
`gunicorn.conf.py`, then the command line's overrides. Shared by the API, bootstrap and
injector entry points."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


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
