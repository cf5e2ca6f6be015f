"""The kumactl configuration file (spec §6.1): control planes, contexts, the current context.

Written camelCase with sorted keys and empty values left out, as protobuf-JSON-to-YAML does; read
in camelCase or snake_case. `$HOME/.kumactl/config` is created with defaults on first run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from cli.kumactl.errors import CliError
from kuma.resource_text import dump_yaml

ADD_HINT = "Use `kumactl config control-planes add` to add a Control Plane and make it active"
NOT_SET = f"active Control Plane is not set. {ADD_HINT}"
BROKEN = f"apparently, configuration is broken. {ADD_HINT}"
DEFAULT_URL = "http://localhost:5681"


def default_path() -> Path:
    return Path(os.path.expanduser("~")) / ".kumactl" / "config"


@dataclass
class ControlPlane:
    name: str
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"coordinates": {"apiServer": {"url": self.url}}, "name": self.name}

    def violations(self) -> list[str]:
        out = []
        if not self.name:
            out.append("Name must be non-empty")
        parts = urlsplit(self.url)
        if not (parts.scheme and parts.netloc):
            out.append("Coordinates: ApiServer: Url must be a valid absolute URI")
        return out


@dataclass
class Context:
    name: str
    control_plane: str
    mesh: str = ""  # `defaults.mesh`: stored, not used (spec §6.1)
    admin_client_cert: str = ""
    admin_client_key: str = ""
    auth_token: str = ""  # the API's admin token, sent as `Authorization: Bearer`

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"controlPlane": self.control_plane, "name": self.name}
        if self.mesh:
            out["defaults"] = {"mesh": self.mesh}
        credentials: dict[str, Any] = {}
        admin = _drop_empty(
            {"clientCert": self.admin_client_cert, "clientKey": self.admin_client_key}
        )
        if admin:
            credentials["adminApi"] = admin
        if self.auth_token:
            credentials["authToken"] = self.auth_token
        if credentials:
            out["credentials"] = credentials
        return out


@dataclass
class Config:
    control_planes: list[ControlPlane] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    current_context: str = ""

    @classmethod
    def default(cls) -> Config:
        return cls([ControlPlane("local", DEFAULT_URL)], [Context("local", "local")], "local")

    # --- lookups ---

    def control_plane(self, name: str) -> ControlPlane | None:
        return next((cp for cp in self.control_planes if cp.name == name), None)

    def context(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    def current(self) -> tuple[Context, ControlPlane]:
        """The current context and its control plane; CliError when unset or dangling."""
        if not self.current_context:
            raise CliError(NOT_SET)
        ctx = self.context(self.current_context)
        cp = self.control_plane(ctx.control_plane) if ctx else None
        if ctx is None or cp is None:
            raise CliError(BROKEN)
        return ctx, cp

    # --- changes (spec §6.7) ---

    def add(self, cp: ControlPlane, ctx: Context, overwrite: bool) -> None:
        if self.control_plane(cp.name) is not None and not overwrite:
            raise CliError(
                f'Control Plane with name "{cp.name}" already exists. '
                "Use --overwrite to replace an existing one."
            )
        if self.context(ctx.name) is not None and not overwrite:
            raise CliError(f'Context with name "{ctx.name}" already exists')
        self.control_planes = [c for c in self.control_planes if c.name != cp.name] + [cp]
        self.contexts = [c for c in self.contexts if c.name != ctx.name] + [ctx]
        self.current_context = ctx.name

    def remove(self, name: str) -> None:
        if self.control_plane(name) is None:
            raise CliError(f'there is no Control Plane with name "{name}"')
        self.control_planes = [c for c in self.control_planes if c.name != name]
        self.contexts = [c for c in self.contexts if c.control_plane != name]
        if self.context(self.current_context) is None:
            self.current_context = self.contexts[0].name if self.contexts else ""

    def switch(self, name: str) -> None:
        if self.context(name) is None:
            raise CliError(f'there is no Control Plane with name "{name}"')
        self.current_context = name

    # --- (de)serialisation ---

    def to_json(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "controlPlanes": [cp.to_json() for cp in self.control_planes],
                "contexts": [c.to_json() for c in self.contexts],
                "currentContext": self.current_context,
            }
        )

    def to_yaml(self) -> str:
        return dump_yaml(self.to_json())

    @classmethod
    def from_json(cls, data: Any) -> Config:
        data = _camel_keys(data or {})
        if not isinstance(data, dict):
            raise ValueError("configuration must be a mapping")
        cps = [
            ControlPlane(
                str(cp.get("name", "")),
                str(_get(cp, "coordinates", "apiServer", "url") or ""),
            )
            for cp in data.get("controlPlanes") or []
        ]
        contexts = [
            Context(
                name=str(c.get("name", "")),
                control_plane=str(c.get("controlPlane", "")),
                mesh=str(_get(c, "defaults", "mesh") or ""),
                admin_client_cert=str(_get(c, "credentials", "adminApi", "clientCert") or ""),
                admin_client_key=str(_get(c, "credentials", "adminApi", "clientKey") or ""),
                auth_token=str(_get(c, "credentials", "authToken") or ""),
            )
            for c in data.get("contexts") or []
        ]
        return cls(cps, contexts, str(data.get("currentContext") or ""))


def load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise CliError(f'Failed to access configuration file "{path}"') from None
    try:
        return Config.from_json(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError, AttributeError) as exc:
        raise CliError(f'Failed to parse configuration file "{path}": {exc}') from None


def save(config: Config, path: Path) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(config.to_yaml())


def load_or_init(explicit: str | None) -> tuple[Config, Path]:
    """The config named by --config-file (which must exist), else the default file, which is
    written with defaults when missing (spec §6.1 first run)."""
    if explicit:
        path = Path(explicit)
        return load(path), path
    path = default_path()
    if not path.exists():
        save(Config.default(), path)
    return load(path), path


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in ("", None, [], {})}


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


_SNAKE = re.compile(r"_([a-z0-9])")


def _camel_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            _SNAKE.sub(lambda m: m.group(1).upper(), str(k)): _camel_keys(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_camel_keys(v) for v in data]
    return data
