"""kumactl's errors. Click prints every one as `Error: <message>` and exits 1 (spec §6.1); an
error the API answered with is rendered in the API's own shape: title, details, one line per cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import click


class CliError(click.ClickException):
    """A runtime error: `Error: <message>`, exit code 1, no usage text."""

    exit_code = 1


@dataclass(frozen=True)
class Cause:
    field: str
    message: str


class ApiError(CliError):
    """A JSON error body of the API (spec §4.4): `<title> (<details>)` then `* field: message`."""

    def __init__(self, status: int, title: str, details: str, causes: list[Cause] | None = None):
        self.status = status
        self.title = title
        self.details = details
        self.causes = list(causes or [])
        lines = [f"{title} ({details})"] + [f"* {c.field}: {c.message}" for c in self.causes]
        super().__init__("\n".join(lines))


class HttpError(CliError):
    """A non-2xx answer whose body is not the API's error shape: `(<status>): <body>`."""

    def __init__(self, status: int, body: str):
        self.status = status
        super().__init__(f"({status}): {body.strip()}")


class TransportError(CliError):
    """The request did not get an answer: connection refused, timeout, bad host."""


@contextmanager
def failing(what: str) -> Iterator[None]:
    """Prefix a runtime error with `<what>: `; an API error is shown in its own shape instead."""
    try:
        yield
    except ApiError:
        raise
    except CliError as exc:
        raise CliError(f"{what}: {exc.message}") from None
