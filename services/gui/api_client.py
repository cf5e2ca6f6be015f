"""The GUI's reads from the API (`guiServer.apiServerUrl`): JSON over HTTP, one session per
thread, no credentials. Errors carry the API's own Kuma-shaped body when there is one."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

TIMEOUT = 10.0


class ApiUnavailable(Exception):
    """The API could not be reached, or answered with an error."""

    def __init__(self, status: int, title: str, details: str = ""):
        super().__init__(f"{title}: {details}" if details else title)
        self.status, self.title, self.details = status, title, details


def segment(text: str) -> str:
    """One path segment, quoted."""
    return quote(text, safe="")


class ApiClient:
    def __init__(self, base_url: str, timeout: float = TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # a proxy from the environment is not the API's
        return session

    def raw(self, path: str, params: Sequence[tuple[str, str]] = ()) -> requests.Response:
        try:
            return self._session().get(
                self.base_url + path, params=list(params), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ApiUnavailable(502, "The API is not reachable", str(exc)) from None

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        response = self.raw(path, params)
        if response.status_code != 200:
            try:
                body = response.json()
                title, details = str(body.get("title", "")), str(body.get("details", ""))
            except ValueError:
                title, details = f"The API answered {response.status_code}", ""
            raise ApiUnavailable(response.status_code, title or "Error", details)
        return response.json()
