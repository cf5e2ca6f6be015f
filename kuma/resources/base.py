"""What every resource type is built from: the spec model base, the protobuf-JSON field types
(durations, timestamps, uint64 counters), the Resource record, and the translation of decode
errors into Kuma's violations.

The JSON mapping is protobuf-JSON as Kuma speaks it (spec §0): camelCase out, camelCase or
snake_case in, unknown fields ignored, default values omitted.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kuma.durations import RESOURCE_DURATION_PATTERN, format_proto_duration, parse_duration
from kuma.errors import ValidationError, Violation
from kuma.resources import paths


class Spec(BaseModel):
    """Base of every resource spec and nested message."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


# --- protobuf-JSON scalar types -------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    # re.search, as JSON-schema validators match a pattern
    if isinstance(value, str) and re.search(RESOURCE_DURATION_PATTERN, value):
        try:
            return parse_duration(value)
        except (ValueError, OverflowError):  # OverflowError: more than timedelta holds
            pass
    raise PydanticCustomError("duration", "must have a valid value")


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_proto_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": RESOURCE_DURATION_PATTERN,
            "examples": ["5s", "0.250s"],
        }
    ),
]


def format_timestamp(ts: datetime) -> str:
    """RFC3339 in UTC with 0, 3, 6 or 9 fractional digits, as protobuf-JSON writes it."""
    ts = ts.astimezone(UTC)
    base = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond == 0:
        return base + "Z"
    if ts.microsecond % 1000 == 0:
        return f"{base}.{ts.microsecond // 1000:03d}Z"
    return f"{base}.{ts.microsecond:06d}Z"


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and _RFC3339.match(value):
        text = value.replace("Z", "+00:00")
        # Python keeps microseconds only: trim nanosecond digits before parsing.
        text = re.sub(r"\.(\d{6})\d+", r".\1", text)
        return datetime.fromisoformat(text)
    raise PydanticCustomError("timestamp", "must be an RFC3339 timestamp")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def decimal_pattern(limit: int) -> str:
    """The decimal texts of 0..`limit` (leading zeros allowed), as an anchored pattern."""
    digits = str(limit)
    options = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - i - 1
            options.append(
                f"{digits[:i]}[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else "")
            )
    options.append(digits)
    return f"^0*({'|'.join(options)})$"


def _unsigned(bits: int) -> Any:
    # a quoted number as Go's strconv.ParseUint reads it: digits only (no sign, space or `_`);
    # re.search, as JSON-schema validators match the pattern the schema states
    quoted = re.compile(decimal_pattern(2**bits - 1))

    def check(value: Any) -> int:
        # protobuf-JSON reads a whole-number float (`2790.0`, `1e3`) as the integer it is
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and quoted.search(value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**bits:
            return value
        raise PydanticCustomError("unsigned", "must be an unsigned integer")

    return check


def _unsigned_schema(bits: int) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 2**bits - 1},
            {"type": "string", "pattern": decimal_pattern(2**bits - 1)},
        ]
    }


# uint64 counters are JSON strings in protobuf-JSON (spec §0), which reads numbers too.
UInt64 = Annotated[
    int,
    BeforeValidator(_unsigned(64)),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(_unsigned_schema(64)),
]


# a JSON number, or a quoted one as protobuf-JSON also reads (`"5670"`)
UInt32 = Annotated[int, BeforeValidator(_unsigned(32)), WithJsonSchema(_unsigned_schema(32))]


def _bool(value: Any) -> bool:
    # protobuf-JSON takes JSON true/false only (pydantic's lax mode would take "yes" and 1)
    if isinstance(value, bool):
        return value
    raise PydanticCustomError("bool", "must be a boolean")


Bool = Annotated[bool, BeforeValidator(_bool), WithJsonSchema({"type": "boolean"})]


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            pass
    raise PydanticCustomError("bytes", "must be base64 encoded bytes")


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_bytes),
    PlainSerializer(
        lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]

Tags = dict[str, str]


# --- the resource record --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    """One stored resource: identity (type, mesh, name), its spec, and what the store adds.

    A Mesh is its own mesh: mesh == name (spec §3.1). `version` is the store's optimistic
    concurrency token: an update must carry the version it read.
    """

    type: str
    mesh: str
    name: str
    spec: Any
    version: int = 0
    # Store revision of the write that produced this version (0 until stored).
    revision: int = field(default=0, compare=False)
    creation_time: datetime | None = field(default=None, compare=False)
    modification_time: datetime | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.mesh, self.name)

    # Specs hold dicts and cannot be hashed; equal resources have equal versions, and equality
    # still compares the spec. Lets the xDS build key its parts by resources: it hashes each
    # Dataplane about twenty times per generation, so the hash is computed once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.type, self.mesh, self.name, self.version)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        # Through the constructor: a string's hash differs between processes.
        return (Resource, tuple(getattr(self, f.name) for f in fields(self) if f.init))

    def __eq__(self, other: object) -> bool:
        # The dataclass's own would compare the spec (deep) before the version (an int).
        if self is other:
            return True
        if not isinstance(other, Resource):
            return NotImplemented
        return (
            self.version == other.version
            and self.name == other.name
            and self.type == other.type
            and self.mesh == other.mesh
            and self.spec == other.spec
        )


# --- decode errors -> violations ------------------------------------------------------------

# Fields whose JSON value is a map: a key below them is rendered `["key"]`, not `.key`.
MAP_FIELDS = frozenset({"tags", "match", "destination"})

_MESSAGES = {
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
}


def _path_of(loc: tuple[Any, ...], root: str) -> str:
    path, parent = root, None
    for part in loc:
        if isinstance(part, int):
            path = paths.index(path, part)
        elif parent in MAP_FIELDS:
            path = paths.key(path, str(part))
        else:
            path = paths.field(path, str(part))
        parent = part
    return path


def violations_from(error: PydanticValidationError, root: str = "") -> list[Violation]:
    result = []
    for item in error.errors(include_url=False):
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = _MESSAGES.get(item["type"], item["msg"])
        result.append(Violation(_path_of(loc, root) or root, message))
    return result


def decode(model: type[Spec], data: Any, root: str = "") -> Any:
    """Decode protobuf-JSON into `model`, raising Kuma's ValidationError on bad input."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(violations_from(exc, root)) from None


def now() -> datetime:
    return datetime.now(UTC)
