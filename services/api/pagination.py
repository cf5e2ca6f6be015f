"""List pagination as Kuma 0.5.0 added it (spec §15): `size` (default 100, at most 1000) and an
opaque `offset`; the body is `{"total", "items", "next"}`, `next` an absolute URL or null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Request

from kuma.errors import ValidationError, Violation

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**63 - 1  # what a store can skip (Postgres OFFSET is a bigint)


@dataclass(frozen=True, slots=True)
class PageRequest:
    size: int
    offset: int


def _non_negative_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def page_request(request: Request) -> PageRequest:
    """The page a list request asks for; ValidationError ("Invalid page size" / "Invalid
    offset") for anything else."""
    for key, details in (("size", "Invalid page size"), ("offset", "Invalid offset")):
        if len(request.args.getlist(key)) > 1:
            raise ValidationError([Violation(key, "must be given once")], details)
    size_text = request.args.get("size")
    size = DEFAULT_PAGE_SIZE
    if size_text is not None:  # `size=` is not a number either
        parsed = _non_negative_int(size_text)
        if parsed is None or parsed < 1:
            raise ValidationError(
                [Violation("size", "must be a positive integer")], "Invalid page size"
            )
        if parsed > MAX_PAGE_SIZE:
            message = f"Invalid page size of {parsed}. Maximum page size is {MAX_PAGE_SIZE}"
            raise ValidationError([Violation("size", message)], "Invalid page size")
        size = parsed
    offset_text = request.args.get("offset")
    offset = 0
    if offset_text is not None:
        parsed = _non_negative_int(offset_text)
        if parsed is None or parsed > MAX_OFFSET:
            raise ValidationError(details="Invalid offset")
        offset = parsed
    return PageRequest(size, offset)


def next_url(request: Request, page: PageRequest, total: int) -> str | None:
    """The absolute URL of the next page (same query, next offset), or None after the last."""
    following = page.offset + page.size
    if following >= total:
        return None
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("size", "offset")]
    query += [("size", str(page.size)), ("offset", str(following))]
    return f"{request.base_url}?{urlencode(query)}"


def list_body(request: Request, page: PageRequest, items: list[Any], total: int) -> dict[str, Any]:
    return {"total": total, "items": items, "next": next_url(request, page, total)}
