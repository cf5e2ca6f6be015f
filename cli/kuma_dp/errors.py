"""The one error kuma-dp reports to its user: printed as `Error: <message>`, exit status 1."""

from __future__ import annotations


class DpError(Exception):
    pass
