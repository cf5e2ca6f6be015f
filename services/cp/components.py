"""What `kuma-cp run` starts, in order. Each service adds its component here as it lands."""

from __future__ import annotations

from typing import Protocol

from kuma.config import KumaCpConfig
from kuma.wiring import Core, ensure_default_mesh, open_core


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class CoreComponent:
    """The store and change feed; on start, the default resources of spec §2.5."""

    name = "store and change feed"

    def __init__(self, cfg: KumaCpConfig):
        self.cfg = cfg
        self.core: Core = open_core(cfg, name="kuma-cp")

    def start(self) -> None:
        ensure_default_mesh(self.cfg, self.core.manager)

    def stop(self) -> None:
        self.core.close()


def build_components(cfg: KumaCpConfig) -> list[Component]:
    core = CoreComponent(cfg)
    return [core]
