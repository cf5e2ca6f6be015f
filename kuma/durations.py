"""Duration text in the two forms the product reads and writes.

- Go duration strings (`0s`, `1m0s`, `2h3m4s`, `250ms`, `1.5s`): configs and CLI ages.
- protobuf-JSON durations (`5s`, `0.250s`): resource specs (spec §0).
Both are accepted wherever a duration is read, because users write either.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART_TEXT = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_PART = re.compile(_PART_TEXT)
# What `parse_duration` accepts, as a JSON-schema pattern (OpenAPI, Kubernetes CRDs).
DURATION_PATTERN = rf"^[-+]?(0|({_PART_TEXT})+)$"
# A resource's duration: the same texts, in at most 8 parts whose integer digits are bounded per
# unit (each part under 10^13 s), so that every text it allows fits a timedelta. The resources'
# schemas (OpenAPI, CRDs) state it and the resources hold to it: a text the document allows is
# one the API takes.
_RESOURCE_DIGITS = {"h": 9, "m": 11, "s": 13, "ms": 16, "us": 19, "µs": 19, "μs": 19, "ns": 22}
_RESOURCE_PART = "|".join(
    rf"(\d{{1,{n}}}(\.\d*)?|\.\d+){unit}" for unit, n in _RESOURCE_DIGITS.items()
)
RESOURCE_DURATION_PATTERN = rf"^[-+]?(0|({_RESOURCE_PART}){{1,8}})$"


def parse_duration(text: str) -> timedelta:
    """Parse a Go or protobuf duration string; raise ValueError with the text otherwise."""
    s = text.strip()
    if not s:
        raise ValueError("invalid duration ''")
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    pos, total_ns = 0, 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r}")
        number, unit = m.groups()
        whole, _, frac = number.partition(".")
        scale = _UNITS_NS[unit]
        total_ns += int(whole or 0) * scale
        if frac:
            total_ns += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    micros = (total_ns + 500) // 1000
    if not micros and re.search("[1-9]", s):
        micros = 1  # a timedelta holds microseconds: a duration above zero stays above zero
    return timedelta(microseconds=sign * micros)


def _total_ns(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000_000 + td.microseconds * 1_000


def format_proto_duration(td: timedelta) -> str:
    """protobuf-JSON form: seconds with 0, 3, 6 or 9 fractional digits (`5s`, `0.250s`)."""
    ns = _total_ns(td)
    sign = "-" if ns < 0 else ""
    secs, frac = divmod(abs(ns), 1_000_000_000)
    if frac == 0:
        return f"{sign}{secs}s"
    digits = f"{frac:09d}"
    while digits.endswith("000"):
        digits = digits[:-3]
    return f"{sign}{secs}.{digits}s"


def _fmt_frac(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = f"{frac:0{len(str(scale)) - 1}d}".rstrip("0")
    return f"{whole}.{digits}"


def format_go_duration(td: timedelta) -> str:
    """Go's time.Duration.String(): `0s`, `250ms`, `1.5s`, `1m0s`, `2h3m4s`."""
    ns = _total_ns(td)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fmt_frac(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fmt_frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    seconds = _fmt_frac(rest, 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"
