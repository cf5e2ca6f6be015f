"""The HTTP client kumactl uses against the API service (spec §4, §6.1).

One place for timeouts, the bearer token, error decoding and paging: a list follows `next` until
the server has no more pages, so `get dataplanes` prints every item however many there are.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, urljoin

import requests

from cli.kumactl.errors import ApiError, Cause, HttpError, TransportError
from kuma.resources.registry import ResourceType

log = logging.getLogger("kumactl")

API_TIMEOUT = 60.0  # spec §6.1
SHORT_TIMEOUT = 10.0  # catalog, token, apply URL
PAGE_SIZE = 1000  # the API's maximum (spec §15, 0.5.0 pagination)

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def collection_path(rtype: ResourceType, mesh: str) -> str:
    if rtype.is_mesh:
        return "/meshes"
    return f"/meshes/{quote(mesh, safe='')}/{rtype.plural}"


def resource_path(rtype: ResourceType, mesh: str, name: str) -> str:
    if rtype.is_mesh:
        return f"/meshes/{quote(name, safe='')}"
    return f"{collection_path(rtype, mesh)}/{quote(name, safe='')}"


def transport_error(method: str, url: str, exc: requests.RequestException) -> TransportError:
    """Go-like `Get "<url>": connection refused` instead of urllib3's nested repr."""
    if isinstance(exc, requests.Timeout):
        reason = "timeout awaiting response"
    else:
        found = _ERRNO.findall(str(exc))
        reason = found[-1].strip().lower() if found else str(exc)
    return TransportError(f'{method.title()} "{url}": {reason}')


def error_from(response: requests.Response) -> ApiError | HttpError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("title") and body.get("details"):
        causes = [
            Cause(str(c.get("field", "")), str(c.get("message", "")))
            for c in body.get("causes") or []
            if isinstance(c, dict)
        ]
        return ApiError(response.status_code, str(body["title"]), str(body["details"]), causes)
    return HttpError(response.status_code, response.text)


class ApiClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = API_TIMEOUT):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def request(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request; TransportError when no answer came. Any status is returned."""
        url = path if "://" in path else self.url(path)
        log.debug("%s %s", method, url)
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise transport_error(method, url, exc) from None
        log.debug("%s %s -> %d", method, url, response.status_code)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Like `request`, but any non-2xx answer raises ApiError / HttpError."""
        response = self.request(method, path, **kwargs)
        if not 200 <= response.status_code < 300:
            raise error_from(response)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs).json()

    def list_all(self, path: str, params: list[tuple[str, str]] | None = None) -> list[Any]:
        """Every item of a list endpoint, page by page along `next`."""
        items: list[Any] = []
        url: str | None = self.url(path)
        query: list[tuple[str, str]] | None = [*(params or []), ("size", str(PAGE_SIZE))]
        seen: set[str] = set()
        while url:
            body = self.get_json(url, params=query)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise HttpError(200, f"unexpected list body from {url}")
            items.extend(body["items"])
            nxt = body.get("next")
            if not nxt:
                break
            url = urljoin(url, nxt)  # `next` carries every parameter it needs
            if url in seen:
                raise HttpError(200, f"the server's pages loop at {url}")
            seen.add(url)
            query = None
        return items

    def put_json(self, path: str, body: Any) -> requests.Response:
        return self.call("PUT", path, json=body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)
